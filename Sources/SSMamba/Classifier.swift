import Randomness
import Tensors

/// ROI classifier: encoder on all patches → mean over tokens → dropout → linear head (`head.*`).
public final class Classifier: ParameterOwner {
    public let encoder: Encoder
    let head: Linear
    var dropout: Dropout
    private var tokenCount = 0

    public init(config: ModelConfiguration, using rng: inout RandomGenerator) throws {
        encoder = try Encoder(config: config, using: &rng)
        head = Linear("head", inFeatures: config.outputWidth, outFeatures: config.classes, using: &rng)
        dropout = Dropout(probability: config.headDropout)
    }

    public var config: ModelConfiguration { encoder.config }
    public var parameters: [Parameter] { encoder.parameters + head.parameters }

    /// images (B, C, H, W) → logits (B, classes).
    public func forward(_ images: Tensor, training: Bool, using rng: inout RandomGenerator) -> Tensor {
        let grid = encoder.fullGrid(batch: images.shape[0])
        let tokens = encoder.forward(images, grid: grid, training: training, using: &rng)
        let pooled = tokens.mean(alongAxis: 1)
        guard training else { return head.forward(pooled, keeping: false) }  // stores nothing: `predict` may run on several threads
        tokenCount = grid.count
        return head.forward(dropout.forward(pooled, training: true, using: &rng))
    }

    /// Images per forward in `predict`: small enough that a chunk's activations stay in cache
    /// (ssmamba_tiny, 2 cores: 26 images/s in chunks of 16 against 19 for a batch of 64 at once).
    public static let inferenceChunk = 16

    /// Evaluation-mode logits (B, classes) for images (B, C, H, W), computed `inferenceChunk`
    /// images at a time. Equal to one evaluation forward of the whole batch: without dropout and
    /// drop-path every image is independent of the others.
    public func predict(_ images: Tensor) -> Tensor {
        var unused = RandomGenerator(seed: 0)
        let batch = images.shape[0]
        guard batch > Self.inferenceChunk else { return forward(images, training: false, using: &unused) }
        let perImage = images.count / batch
        var logits: [Float] = []
        logits.reserveCapacity(batch * config.classes)
        for start in stride(from: 0, to: batch, by: Self.inferenceChunk) {
            let count = min(Self.inferenceChunk, batch - start)
            let chunk = Tensor(shape: [count] + images.shape.dropFirst(),
                               scalars: Array(images.scalars[(start * perImage)..<((start + count) * perImage)]))
            logits += forward(chunk, training: false, using: &unused).scalars
        }
        return Tensor(shape: [batch, config.classes], scalars: logits)
    }

    /// ∂L/∂logits → accumulates every parameter gradient.
    public func backward(_ g: Tensor) {
        let gPooled = dropout.backward(head.backward(g))
        let (batch, dim) = (gPooled.shape[0], gPooled.shape[1])
        var gTokens = Tensor(zeros: [batch, tokenCount, dim])
        gPooled.withUnsafeBufferPointer { gp in gTokens.withUnsafeMutableBufferPointer {
            Reduction.sumBackward(gp, outer: batch, length: tokenCount, inner: dim, into: $0, mean: true)
        } }
        encoder.backward(gTokens)
    }
}
