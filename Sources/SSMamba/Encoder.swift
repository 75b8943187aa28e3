import Tensors

/// The SSMamba encoder: patch embedding → blocks → final LayerNorm, on the tokens of a
/// `TokenGrid` (all patches, or the visible ones during masked pretraining).
///
/// Block i of `depth` has drop-path rate `dropPathRate·i/(depth − 1)`; the last
/// `attentionBlocks` blocks use self-attention instead of DMS.
public final class Encoder: ParameterOwner {
    public let config: ModelConfiguration
    let patchEmbedding: PatchEmbedding
    let blocks: [Block]
    let norm: LayerNormalization

    public init(config: ModelConfiguration, using rng: inout RandomGenerator) throws {
        try config.validate()
        MemoryPolicy.keepFreedMemory()
        self.config = config
        patchEmbedding = PatchEmbedding("patch_embed", channels: config.channels, dim: config.dim, patch: config.patchSize, using: &rng)
        var made: [Block] = []
        for i in 0..<config.depth {
            let rate = config.depth > 1 ? config.dropPathRate * Float(i) / Float(config.depth - 1) : 0
            made.append(try Block("blocks.\(i)", config: config, attention: i >= config.depth - config.attentionBlocks,
                                  dropPath: rate, using: &rng))
        }
        blocks = made
        norm = LayerNormalization("norm", width: config.dim)
    }

    public var parameters: [Parameter] {
        patchEmbedding.parameters + blocks.flatMap(\.parameters) + norm.parameters
    }

    /// images (B, C, H, W) → tokens (B, grid.count, dim). With `training` false nothing is kept
    /// for a backward (and `backward` must not be called).
    public func forward(_ images: Tensor, grid: TokenGrid, training: Bool, using rng: inout RandomGenerator) -> Tensor {
        var x = patchEmbedding.forward(images, grid: grid)
        if !training { patchEmbedding.releaseActivations() }
        for block in blocks { x = block.forward(x, grid: grid, training: training, using: &rng) }
        let tokens = norm.forward(x)
        if !training { norm.releaseActivations() }
        return tokens
    }

    /// ∂L/∂tokens → accumulates every parameter gradient; returns ∂L/∂images.
    @discardableResult
    public func backward(_ g: Tensor) -> Tensor {
        var gx = norm.backward(g)
        for block in blocks.reversed() { gx = block.backward(gx) }
        return patchEmbedding.backward(gx)
    }

    public func fullGrid(batch: Int) -> TokenGrid {
        TokenGrid.full(batch: batch, height: config.gridSide, width: config.gridSide)
    }
}
