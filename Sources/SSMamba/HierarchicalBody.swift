import Randomness
import Tensors

/// R1, the hierarchical layout (docs/MODEL.md; MambaVision-T-like): a convolutional stem to 1/4 of
/// the image side, then levels of width dim·2ⁱ. Every level after the first opens with a 3×3
/// stride-2 convolution (no bias) doubling the width and halving the side. The first
/// `convolutionLevels` levels hold convolutional blocks; the others SSMamba blocks (LPR, DMS,
/// MLP), whose last `levelAttentionBlocks[i]` use self-attention. Drop-path rates rise linearly
/// over all blocks. Parameter names: `patch_embed.*`, `levels.{i}.downsample.*`,
/// `levels.{i}.blocks.{j}.*`.
final class HierarchicalBody: ParameterOwner {
    enum Blocks {
        case convolution([ConvolutionBlock])
        case mixing([Block])
    }

    struct Level {
        let downsample: Convolution2D?
        let blocks: Blocks
        let side: Int
    }

    let stem: ConvolutionStem
    let levels: [Level]

    init(config: ModelConfiguration, using rng: inout RandomGenerator) throws {
        stem = ConvolutionStem("patch_embed", channels: config.channels, dim: config.dim, using: &rng)
        let total = config.levelDepths.reduce(0, +)
        var made: [Level] = [], blockIndex = 0
        for (i, (depth, side)) in zip(config.levelDepths, config.levelSides).enumerated() {
            let width = config.dim << i
            let downsample = i == 0 ? nil : Convolution2D("levels.\(i).downsample", inChannels: width / 2, outChannels: width,
                                                          stride: 2, bias: false, using: &rng)
            func rate() -> Float {
                defer { blockIndex += 1 }
                return total > 1 ? config.dropPathRate * Float(blockIndex) / Float(total - 1) : 0
            }
            let blocks: Blocks
            if i < config.convolutionLevels {
                blocks = .convolution((0..<depth).map { j in ConvolutionBlock("levels.\(i).blocks.\(j)", dim: width, dropPath: rate(), using: &rng) })
            } else {
                blocks = .mixing(try (0..<depth).map { j in
                    try Block("levels.\(i).blocks.\(j)", config: config, dim: width, heads: config.levelHeads[i],
                              attention: j >= depth - config.levelAttentionBlocks[i], dropPath: rate(), using: &rng)
                })
            }
            made.append(Level(downsample: downsample, blocks: blocks, side: side))
        }
        levels = made
    }

    var parameters: [Parameter] {
        stem.parameters + levels.flatMap { level -> [Parameter] in
            let blocks: [Parameter]
            switch level.blocks {
            case .convolution(let list): blocks = list.flatMap(\.parameters)
            case .mixing(let list): blocks = list.flatMap(\.parameters)
            }
            return (level.downsample?.parameters ?? []) + blocks
        }
    }

    /// images (batch, channels, imageSize, imageSize) → tokens (batch, s·s, width) of the last level.
    func forward(_ images: Tensor, training: Bool, using rng: inout RandomGenerator) -> Tensor {
        var x = stem.forward(images, training: training)
        for (i, level) in levels.enumerated() {
            if let downsample = level.downsample {
                let previous = levels[i - 1].side
                x = downsample.forward(x, height: previous, width: previous, keeping: training)
            }
            let side = level.side
            switch level.blocks {
            case .convolution(let list):
                for block in list { x = block.forward(x, side: side, training: training, using: &rng) }
            case .mixing(let list):
                let grid = TokenGrid.full(batch: images.shape[0], height: side, width: side)
                for block in list { x = block.forward(x, grid: grid, training: training, using: &rng) }
            }
        }
        return x
    }

    /// ∂tokens of the last level → ∂images; accumulates every parameter gradient.
    func backward(_ g: Tensor) -> Tensor {
        var gx = g
        for level in levels.reversed() {
            switch level.blocks {
            case .convolution(let list):
                for block in list.reversed() { gx = block.backward(gx) }
            case .mixing(let list):
                for block in list.reversed() { gx = block.backward(gx) }
            }
            if let downsample = level.downsample { gx = downsample.backward(gx) }
        }
        return stem.backward(gx)
    }
}
