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
        tokenCount = grid.count
        let pooled = tokens.mean(alongAxis: 1)
        return head.forward(dropout.forward(pooled, training: training, using: &rng))
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
