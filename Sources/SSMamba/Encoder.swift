import Randomness
import Tensors

/// The SSMamba encoder. Plain layout (R2): patch embedding → blocks → final LayerNorm, on the
/// tokens of a `TokenGrid` (all patches, or the visible ones during masked pretraining).
/// Hierarchical layout (R1): `HierarchicalBody` → final LayerNorm, on all cells only.
///
/// Block i of `depth` has drop-path rate `dropPathRate·i/(depth − 1)`; the last
/// `attentionBlocks` blocks use self-attention instead of DMS.
public final class Encoder: ParameterOwner {
    public let config: ModelConfiguration
    let patchEmbedding: PatchEmbedding?
    let blocks: [Block]
    let hierarchy: HierarchicalBody?
    let norm: LayerNormalization

    public init(config: ModelConfiguration, using rng: inout RandomGenerator) throws {
        try config.validate()
        self.config = config
        if config.layout == .hierarchical {
            patchEmbedding = nil
            blocks = []
            hierarchy = try HierarchicalBody(config: config, using: &rng)
        } else {
            patchEmbedding = PatchEmbedding("patch_embed", channels: config.channels, dim: config.dim, patch: config.patchSize, using: &rng)
            var made: [Block] = []
            for i in 0..<config.depth {
                let rate = config.depth > 1 ? config.dropPathRate * Float(i) / Float(config.depth - 1) : 0
                made.append(try Block("blocks.\(i)", config: config, dim: config.dim, heads: config.heads,
                                      attention: i >= config.depth - config.attentionBlocks, dropPath: rate, using: &rng))
            }
            blocks = made
            hierarchy = nil
        }
        norm = LayerNormalization("norm", width: config.outputWidth)
    }

    public var parameters: [Parameter] {
        (patchEmbedding?.parameters ?? []) + blocks.flatMap(\.parameters) + (hierarchy?.parameters ?? []) + norm.parameters
    }

    /// images (B, C, H, W) → tokens (B, grid.count, dim). With `training` false nothing is kept
    /// for a backward (and `backward` must not be called), so threads may run evaluation forwards
    /// of one encoder at once.
    /// The hierarchical layout takes only the full grid of its last level (`fullGrid`).
    public func forward(_ images: Tensor, grid: TokenGrid, training: Bool, using rng: inout RandomGenerator) -> Tensor {
        if let hierarchy {
            precondition(grid == fullGrid(batch: images.shape[0]), "the hierarchical layout encodes whole images only")
            return encode(patchTokens: hierarchy.forward(images, training: training, using: &rng), grid: grid, training: training, using: &rng)
        }
        return encode(patchTokens: embedPatches(images, grid: grid, training: training), grid: grid, training: training, using: &rng)
    }

    /// The plain layout's first half: images (B, C, H, W) → patch tokens (B, grid.count, dim),
    /// before any block. `forward` is `encode(patchTokens: embedPatches(…))`; masked pretraining
    /// may change the patch tokens in between (SimMIM's mask token).
    public func embedPatches(_ images: Tensor, grid: TokenGrid, training: Bool) -> Tensor {
        guard let patchEmbedding else { preconditionFailure("the hierarchical layout has no patch tokens") }
        return patchEmbedding.forward(images, grid: grid, keeping: training)
    }

    /// The second half: patch tokens (B, grid.count, dim) → blocks → final norm.
    public func encode(patchTokens: Tensor, grid: TokenGrid, training: Bool, using rng: inout RandomGenerator) -> Tensor {
        var x = patchTokens
        for block in blocks { x = block.forward(x, grid: grid, training: training, using: &rng) }
        return norm.forward(x, keeping: training)
    }

    /// ∂L/∂tokens → accumulates every parameter gradient; returns ∂L/∂images.
    @discardableResult
    public func backward(_ g: Tensor) -> Tensor {
        let gPatchTokens = backwardToPatchTokens(g)
        if let hierarchy { return hierarchy.backward(gPatchTokens) }
        return backwardPatchEmbedding(gPatchTokens)
    }

    /// `encode`'s backward: ∂L/∂tokens → ∂L/∂patch tokens, accumulating the blocks' and the norm's
    /// gradients.
    public func backwardToPatchTokens(_ g: Tensor) -> Tensor {
        var gx = norm.backward(g)
        for block in blocks.reversed() { gx = block.backward(gx) }
        return gx
    }

    /// `embedPatches`'s backward: ∂L/∂patch tokens → ∂L/∂images, accumulating the embedding's gradients.
    @discardableResult
    public func backwardPatchEmbedding(_ g: Tensor) -> Tensor {
        guard let patchEmbedding else { preconditionFailure("the hierarchical layout has no patch tokens") }
        return patchEmbedding.backward(g)
    }

    /// Every cell of the output grid (the patch grid, or R1's last level).
    public func fullGrid(batch: Int) -> TokenGrid {
        TokenGrid.full(batch: batch, height: config.outputSide, width: config.outputSide)
    }
}
