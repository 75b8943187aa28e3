import Dispatch
import Randomness
import Tensors

/// ROI classifier: encoder on all patches → mean over tokens → dropout → linear head (`head.*`).
public final class Classifier: ParameterOwner {
    public let encoder: Encoder
    let head: Linear
    var dropout: Dropout
    private var tokenCount = 0
    /// A linear probe: in training the encoder runs as in evaluation (it keeps no activations)
    /// and `backward` stops at its output, so only the head gets gradients. The features are the
    /// training forward's when the encoder has no drop-path (a probe's configuration). A micro
    /// model's probe run takes 0.4 of the CPU it took with the encoder's backward (52 against 131 s).
    public var encoderFrozen = false

    public init(config: ModelConfiguration, using rng: inout RandomGenerator) throws {
        encoder = try Encoder(config: config, using: &rng)
        head = Linear("head", inFeatures: config.outputWidth, outFeatures: config.classes, using: &rng)
        dropout = Dropout(probability: config.headDropout)
    }

    public var config: ModelConfiguration { encoder.config }
    public var parameters: [Parameter] { encoder.parameters + head.parameters }
    /// What training updates: the head's parameters when the encoder is frozen, else all.
    public var trainableParameters: [Parameter] { encoderFrozen ? head.parameters : parameters }

    /// images (B, C, H, W) → logits (B, classes).
    public func forward(_ images: Tensor, training: Bool, using rng: inout RandomGenerator) -> Tensor {
        let grid = encoder.fullGrid(batch: images.shape[0])
        let tokens = encoder.forward(images, grid: grid, training: training && !encoderFrozen, using: &rng)
        let pooled = tokens.mean(alongAxis: 1)
        guard training else { return head.forward(pooled, keeping: false) }  // stores nothing: `predict` may run on several threads
        tokenCount = grid.count
        return head.forward(dropout.forward(pooled, training: true, using: &rng))
    }

    /// Images per forward in `predict`: small enough that a chunk's activations stay in cache
    /// (ssmamba_tiny, 2 cores: 26 images/s in chunks of 16 against 19 for a batch of 64 at once).
    public static let inferenceChunk = 16

    /// Evaluation-mode logits (B, classes) for images (B, C, H, W). The batch is cut into chunks
    /// of at most `inferenceChunk` images and at least one per worker (`ThreadPlan.kernelWorkers`);
    /// the chunks run side by side, each on one core (`BLAS.onOneThread`), rather than one after
    /// the other with every layer split over the cores (ssmamba_tiny, 2 cores, batch 8: 33.5
    /// images/s against 28.1). Equal to one evaluation forward of the whole batch: without dropout
    /// and drop-path every image is independent of the others, and the evaluation forward stores
    /// nothing in the model.
    public func predict(_ images: Tensor) -> Tensor {
        let batch = images.shape[0]
        let workers = max(1, min(ThreadPlan.kernelWorkers, batch))
        let chunk = min(Self.inferenceChunk, (batch + workers - 1) / workers)
        guard chunk < batch else {
            var unused = RandomGenerator(seed: 0)
            return forward(images, training: false, using: &unused)
        }
        let classes = config.classes
        let starts = Array(stride(from: 0, to: batch, by: chunk))
        let lanes = min(workers, starts.count)  // chunk i runs on lane i mod lanes
        var logits = Tensor(uninitialized: [batch, classes])
        let precision = BLAS.precision
        logits.withUnsafeMutableBufferPointer { out in
            let shared = PredictionChunks(model: self, images: images, out: SharedPointer(out.baseAddress!))
            DispatchQueue.concurrentPerform(iterations: lanes) { lane in
                BLAS.withPrecision(precision) { BLAS.onOneThread {
                    for index in stride(from: lane, to: starts.count, by: lanes) {
                        let (start, count) = (starts[index], min(chunk, batch - starts[index]))
                        let part = shared.images.samples(start..<(start + count))
                        var unused = RandomGenerator(seed: 0)
                        let result = shared.model.forward(part, training: false, using: &unused)
                        result.withUnsafeBufferPointer { r in
                            (shared.out.base + start * classes).update(from: r.baseAddress!, count: count * classes)
                        }
                    }
                } }
            }
        }
        return logits
    }

    /// What `predict`'s workers share: the model (its evaluation forward stores nothing), the
    /// images (read only) and the logits, of which each chunk writes its own rows.
    private struct PredictionChunks: @unchecked Sendable {
        let model: Classifier
        let images: Tensor
        let out: SharedPointer<Float>
    }

    /// ∂L/∂logits → accumulates every parameter gradient (the head's only when the encoder is frozen).
    public func backward(_ g: Tensor) {
        let gPooled = dropout.backward(head.backward(g))
        if encoderFrozen { return }
        let (batch, dim) = (gPooled.shape[0], gPooled.shape[1])
        var gTokens = Tensor(zeros: [batch, tokenCount, dim])
        gPooled.withUnsafeBufferPointer { gp in gTokens.withUnsafeMutableBufferPointer {
            Reduction.sumBackward(gp, outer: batch, length: tokenCount, inner: dim, into: $0, mean: true)
        } }
        encoder.backward(gTokens)
    }
}
