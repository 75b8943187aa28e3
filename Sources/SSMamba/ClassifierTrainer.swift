import Foundation
import Tensors

/// How a classifier is trained (MODEL.md's fine-tuning recipe by default).
public struct TrainingSettings: Codable, Sendable, Equatable {
    public var optimizer = AdamW.Settings()
    public var schedule: CosineSchedule
    /// Micro-batches whose gradients are summed (each scaled by 1/n) before one optimizer step.
    public var accumulationSteps = 1
    /// Global gradient-norm clip; 0 turns clipping off.
    public var clipNorm: Float = 1
    public var labelSmoothing: Float = 0.1
    public var seed: UInt64 = 0

    public init(schedule: CosineSchedule) { self.schedule = schedule }
}

/// Supervised training of a `Classifier`: forward, label-smoothed cross-entropy, backward,
/// accumulation, clipping, AdamW with the cosine schedule. Checkpoints hold everything needed to
/// continue bit-exactly: weights, moments, step counters and the random generator.
public final class ClassifierTrainer {
    public let model: Classifier
    public let settings: TrainingSettings
    let optimizer: AdamW
    var rng: RandomGenerator
    public private(set) var microStep = 0

    public init(model: Classifier, settings: TrainingSettings) {
        self.model = model
        self.settings = settings
        optimizer = AdamW(settings: settings.optimizer)
        rng = RandomGenerator(seed: settings.seed)
    }

    public var optimizerStep: Int { optimizer.step }
    public var learningRate: Float { settings.schedule.rate(atStep: optimizer.step) }

    /// One micro-batch: returns its loss. Every `accumulationSteps` calls, takes an optimizer step.
    @discardableResult
    public func trainStep(images: Tensor, labels: [Int]) -> Float {
        if microStep % settings.accumulationSteps == 0 { model.zeroGradients() }
        let logits = model.forward(images, training: true, using: &rng)
        let (loss, gradient) = CrossEntropy.loss(logits: logits, labels: labels, smoothing: settings.labelSmoothing)
        model.backward(gradient * (1 / Float(settings.accumulationSteps)))
        microStep += 1
        if microStep % settings.accumulationSteps == 0 {
            if settings.clipNorm > 0 { clipGradients(model.parameters, maxNorm: settings.clipNorm) }
            optimizer.update(model.parameters, learningRate: learningRate)
        }
        return loss
    }

    /// Logits in evaluation mode (no dropout or drop-path).
    public func predict(_ images: Tensor) -> Tensor { model.predict(images) }

    public func checkpoint(notes: [String: String] = [:]) -> Checkpoint {
        var manifest = Checkpoint.Manifest(model: model.config)
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

    /// A trainer continuing exactly where `checkpoint` stopped.
    public static func resume(from checkpoint: Checkpoint, source: String) throws -> ClassifierTrainer {
        let m = checkpoint.manifest
        guard let settings = m.training, let step = m.optimizerStep, let micro = m.microStep,
              let words = m.randomState?.compactMap({ UInt64($0, radix: 16) }),
              let generator = RandomGenerator(state: words), let moments = checkpoint.optimizer else {
            throw CheckpointError(description: "\(source): a weights-only checkpoint cannot resume training (no optimizer state)")
        }
        var unused = RandomGenerator(seed: 0)
        let model = try Classifier(config: m.model, using: &unused)
        try model.loadStateDictionary(checkpoint.weights, source: source)
        let trainer = ClassifierTrainer(model: model, settings: settings)
        try trainer.optimizer.restore(step: step, moments: moments)
        trainer.rng = generator
        trainer.microStep = micro
        if micro % settings.accumulationSteps != 0 {
            for p in model.parameters {
                guard moments.entries["grad." + p.name] != nil else {
                    throw CheckpointError(description: "\(source): saved mid-accumulation but has no partial gradient for \(p.name)")
                }
                p.gradient = try moments.tensor("grad." + p.name)
            }
        }
        return trainer
    }
}
