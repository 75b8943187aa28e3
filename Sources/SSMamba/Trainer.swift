import Diagnostics
import Foundation
import Randomness
import Tensors

/// How a model is trained (docs/MODEL.md's fine-tuning recipe by default).
public struct TrainingSettings: Codable, Sendable, Equatable {
    public var optimizer = AdamW.Settings()
    public var schedule: CosineSchedule
    /// Micro-batches whose gradients are summed (each scaled by 1/n) before one optimizer step.
    public var accumulationSteps = 1
    /// Global gradient-norm clip; 0 turns clipping off.
    public var clipNorm: Float = 1
    /// Cross-entropy label smoothing (classifiers only).
    public var labelSmoothing: Float = 0.1
    /// Seed of the model's random generator (masks, dropout, drop-path).
    public var seed: UInt64 = 0
    /// The matrix products' operands in forward and backward (`GEMMPrecision`): bfloat16 rounds
    /// them, accumulating in float32; weights, optimizer state, the scan, norms, softmax and the
    /// loss stay float32.
    public var precision: GEMMPrecision = .float32

    public init(schedule: CosineSchedule) { self.schedule = schedule }

    enum CodingKeys: String, CodingKey {
        case optimizer, schedule, accumulationSteps, clipNorm, labelSmoothing, seed, precision
    }

    /// Checkpoints written before `precision` existed trained in float32.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        optimizer = try c.decode(AdamW.Settings.self, forKey: .optimizer)
        schedule = try c.decode(CosineSchedule.self, forKey: .schedule)
        accumulationSteps = try c.decode(Int.self, forKey: .accumulationSteps)
        clipNorm = try c.decode(Float.self, forKey: .clipNorm)
        labelSmoothing = try c.decode(Float.self, forKey: .labelSmoothing)
        seed = try c.decode(UInt64.self, forKey: .seed)
        precision = try c.decodeIfPresent(GEMMPrecision.self, forKey: .precision) ?? .float32
    }
}

/// A training run that cannot go on.
public enum TrainingError: Problem {
    /// The loss of micro-batch `step` was NaN or infinite; no weight was changed by it.
    case nonFiniteLoss(Float, step: Int)

    public var kindName: String { "nonFiniteLoss" }
    public var subject: String { "" }
    public var message: String {
        switch self {
        case .nonFiniteLoss(let loss, let step): return "the loss became \(loss) at step \(step); lower `lr` (the weights before it are kept)"
        }
    }
}

/// The one training loop every training stage uses: micro-batches through a loss closure,
/// gradient accumulation, global-norm clipping, AdamW on the cosine schedule, and checkpoints that
/// hold everything needed to continue bit for bit (weights, moments, step counters, the model's
/// random generator and a partial accumulation). The data order is not its business: streams
/// derive batch k from k alone, so `microStep` is the position to continue from.
public final class Trainer<Model: ParameterOwner> {
    public let model: Model
    public let settings: TrainingSettings
    /// The parameters the optimizer updates (all of the model's unless a subset was given: a
    /// frozen encoder's are left out), and each one's learning-rate multiplier.
    public let trainable: [Parameter]
    public let learningRateScales: [Float]?
    let optimizer: AdamW
    var rng: RandomGenerator
    /// Micro-batches taken so far (also the index of the next batch of the data stream).
    public private(set) var microStep = 0
    /// The processes this model is trained with (nil: this process alone).
    public var group: ProcessGroup?
    /// The place of this process's first sample in the whole batch (data-parallel training): the
    /// model's per-sample random draws (`RandomGenerator.perSample`) follow the sample, not the process.
    public var sampleOffset = 0
    /// Seconds spent averaging gradients with the other processes (waiting for the slowest included).
    public private(set) var synchronizationSeconds = 0.0
    /// Samples and their summed loss since the last optimizer step; the gradient buffer of a group.
    private var windowSamples = 0, windowLoss = 0.0
    private var reduction: [Float] = []

    /// - Parameters:
    ///   - trainable: the parameters to update (default: all of the model's).
    ///   - learningRateScales: a learning-rate multiplier per trainable parameter (layer-wise decay).
    public init(model: Model, settings: TrainingSettings, trainable: [Parameter]? = nil, learningRateScales: [Float]? = nil) {
        self.model = model
        self.settings = settings
        self.trainable = trainable ?? model.parameters
        precondition(learningRateScales == nil || learningRateScales!.count == self.trainable.count, "one scale per trainable parameter")
        self.learningRateScales = learningRateScales
        optimizer = AdamW(settings: settings.optimizer)
        rng = RandomGenerator(seed: settings.seed)
    }

    public var optimizerStep: Int { optimizer.step }
    public var learningRate: Float { settings.schedule.rate(atStep: optimizer.step) }

    /// One micro-batch of `samples` images. `body(&rng, scale)` runs the forward pass and the loss,
    /// then the backward with the loss gradient times `scale` (1 / accumulationSteps), and returns
    /// the loss (the mean over the micro-batch). Every `accumulationSteps` calls the gradients are
    /// clipped and AdamW takes a step. A loss that is not finite throws before any weight changes.
    ///
    /// With a `group` of several processes, every process calls `step` for every micro-batch (with
    /// `samples: 0`, and `body` not called, when its share was empty); before the optimizer step
    /// the gradients become the mean over all processes' samples,
    ///     g = Σ_p n_p · g_p / Σ_p n_p,
    /// which is the gradient one process would have computed on the whole batch, and the returned
    /// loss the same mean of the losses.
    @discardableResult
    public func step(samples: Int = 1, _ body: (inout RandomGenerator, Float) throws -> Float) throws -> Float {
        if microStep % settings.accumulationSteps == 0 {
            model.zeroGradients()
            (windowSamples, windowLoss) = (0, 0)
        }
        var loss: Float = 0
        if samples > 0 {
            rng.sampleOffset = sampleOffset
            loss = try BLAS.withPrecision(settings.precision) { try body(&rng, 1 / Float(settings.accumulationSteps)) }
            guard loss.isFinite else { throw TrainingError.nonFiniteLoss(loss, step: microStep) }
        }
        windowSamples += samples
        windowLoss += Double(loss) * Double(samples)
        microStep += 1
        if microStep % settings.accumulationSteps == 0 {
            if let group, group.processes > 1 {
                guard let mean = try averageOverProcesses(group) else { return 0 }  // no process had a sample
                loss = mean
            }
            if settings.clipNorm > 0 { clipGradients(trainable, maxNorm: settings.clipNorm) }
            optimizer.update(trainable, learningRate: learningRate, scales: learningRateScales)
        }
        return loss
    }

    /// Sums n_p · g_p, n_p · loss_p and n_p over the processes in one buffer (one collective per
    /// optimizer step) and leaves the sample-weighted mean gradient; returns the mean loss, or nil
    /// when the processes had no sample between them.
    private func averageOverProcesses(_ group: ProcessGroup) throws -> Float? {
        let total = trainable.reduce(0) { $0 + $1.gradient.count }
        if reduction.count != total + 2 { reduction = [Float](repeating: 0, count: total + 2) }
        let weight = Float(windowSamples)
        reduction.withUnsafeMutableBufferPointer { flat in
            var offset = 0
            for p in trainable {
                p.gradient.withUnsafeBufferPointer { g in
                    for i in g.indices { flat[offset + i] = g[i] * weight }
                }
                offset += p.gradient.count
            }
            flat[total] = Float(windowLoss)
            flat[total + 1] = weight
        }
        let started = DispatchTime.now().uptimeNanoseconds
        try reduction.withUnsafeMutableBufferPointer { try group.sum($0) }
        synchronizationSeconds += Double(DispatchTime.now().uptimeNanoseconds - started) * 1e-9
        let samples = reduction[total + 1]
        guard samples > 0 else { return nil }
        reduction.withUnsafeBufferPointer { flat in
            var offset = 0
            for p in trainable {
                p.gradient.withUnsafeMutableBufferPointer { g in
                    for i in g.indices { g[i] = flat[offset + i] / samples }
                }
                offset += p.gradient.count
            }
        }
        return reduction[total] / samples
    }

    /// Everything needed to continue: `config` describes the model, `notes` are free-form facts.
    public func checkpoint(config: ModelConfiguration, notes: [String: String] = [:]) -> Checkpoint {
        var manifest = Checkpoint.Manifest(model: config)
        manifest.training = settings
        manifest.optimizerStep = optimizer.step
        manifest.microStep = microStep
        manifest.randomState = rng.savedState.map { String($0, radix: 16) }
        manifest.notes = notes
        var state = optimizer.momentFile()
        // Between micro-batches of one accumulation, the partial gradient sum is state too.
        if microStep % settings.accumulationSteps != 0 {
            for p in model.parameters { state.set("grad." + p.name, p.gradient) }
        }
        return Checkpoint(manifest: manifest, weights: model.stateDictionary(), optimizer: state)
    }

    /// Continues exactly where `checkpoint` (made by `checkpoint(config:notes:)` with the same
    /// settings) stopped: weights, moments, counters, random generator, partial gradients.
    public func restore(from checkpoint: Checkpoint, source: String) throws {
        let m = checkpoint.manifest
        guard let saved = m.training, let step = m.optimizerStep, let micro = m.microStep,
              let words = m.randomState?.compactMap({ UInt64($0, radix: 16) }),
              let generator = RandomGenerator(state: words), let moments = checkpoint.optimizer else {
            throw CheckpointError(.cannotResume, source, "a weights-only checkpoint cannot resume training (no optimizer state)")
        }
        guard saved == settings else {
            throw CheckpointError(.cannotResume, source, "made with other training settings than this run's; resume with the same flow, or start afresh without --resume")
        }
        if micro % settings.accumulationSteps != 0 {
            for p in model.parameters where moments.entries["grad." + p.name] == nil {
                throw CheckpointError(.cannotResume, source, "saved mid-accumulation but has no partial gradient for \(p.name)")
            }
        }
        try model.loadStateDictionary(checkpoint.weights, source: source)
        try optimizer.restore(step: step, moments: moments)
        rng = generator
        microStep = micro
        if micro % settings.accumulationSteps != 0 {
            for p in model.parameters { p.gradient = try moments.tensor("grad." + p.name) }
        }
    }
}

extension Trainer where Model == Classifier {
    /// One micro-batch of supervised classification: label-smoothed cross-entropy.
    @discardableResult
    public func step(images: Tensor, labels: [Int]) throws -> Float {
        try step(samples: labels.count) { rng, scale in
            Self.classify(model, images, labels, smoothing: settings.labelSmoothing, rng: &rng, scale: scale)
        }
    }

    /// Forward, label-smoothed cross-entropy and backward (times `scale`) of one micro-batch;
    /// returns the mean loss.
    static func classify(_ model: Classifier, _ images: Tensor, _ labels: [Int], smoothing: Float,
                         rng: inout RandomGenerator, scale: Float) -> Float {
        let logits = model.forward(images, training: true, using: &rng)
        let (loss, gradient) = CrossEntropy.loss(logits: logits, labels: labels, smoothing: smoothing)
        model.backward(scale == 1 ? gradient : gradient * scale)
        return loss
    }

    /// Logits in evaluation mode (no dropout or drop-path).
    public func predict(_ images: Tensor) -> Tensor { model.predict(images) }

    /// A classifier trainer continuing where `checkpoint` stopped (its model built from the
    /// checkpoint's configuration, its settings the checkpoint's).
    public static func resume(from checkpoint: Checkpoint, source: String) throws -> Trainer<Classifier> {
        guard let settings = checkpoint.manifest.training else {
            throw CheckpointError(.cannotResume, source, "a weights-only checkpoint cannot resume training (no training settings)")
        }
        var unused = RandomGenerator(seed: 0)
        let trainer = Trainer(model: try Classifier(config: checkpoint.manifest.model, using: &unused), settings: settings)
        try trainer.restore(from: checkpoint, source: source)
        return trainer
    }
}

/// Layer-wise learning-rate decay (BEiT/MAE fine-tuning): a parameter of layer l of L blocks
/// learns at decay^(L + 1 − l) of the rate, where the patch embedding is layer 0, block i is layer
/// i + 1 and everything after the blocks (final norm, head) layer L + 1.
public enum LayerDecay {
    public static func scales(_ parameters: [Parameter], depth: Int, decay: Float) -> [Float] {
        parameters.map { p in
            let layer: Int
            if let range = p.name.range(of: "blocks."), range.lowerBound == p.name.startIndex,
               let index = Int(p.name[range.upperBound...].prefix { $0.isNumber }) {
                layer = index + 1
            } else if p.name.hasPrefix("patch_embed") || p.name.hasPrefix("pos_embed") {
                layer = 0
            } else {
                layer = depth + 1
            }
            return Float(Foundation.pow(Double(decay), Double(depth + 1 - layer)))
        }
    }
}
