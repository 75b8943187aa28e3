/// Arithmetic cost of one image through the model, counted layer by layer.
///
/// GEMM-shaped work (projections, patch embedding, attention products, MLP) is counted exactly as
/// 2·m·n·k. Each selective-scan state update (a = exp(Δ·A), h = a·h + Δ·B·u, y += C·h) is counted
/// as 7 operations with exp as one; convolutions as 2 per tap. A training step is counted as
/// 3× the forward (forward + two products per weight in the backward).
public struct ModelCost: Sendable {
    public var gemmFLOPs = 0.0
    public var scanFLOPs = 0.0
    public var otherFLOPs = 0.0
    /// State updates of all scans.
    public var scanUpdates = 0.0

    public var forwardFLOPs: Double { gemmFLOPs + scanFLOPs + otherFLOPs }
    public var trainingFLOPs: Double { 3 * forwardFLOPs }

    /// Cost for one image with `tokens` visible tokens (all of them unless masked; the
    /// hierarchical layout always encodes all cells).
    public init(config c: ModelConfiguration, tokens: Int? = nil) {
        if c.layout == .hierarchical {
            /// A 3×3 convolution producing a side × side grid.
            func convolution(_ input: Int, _ output: Int, side: Int) { gemmFLOPs += 2 * Double(side * side * input * 9 * output) }
            let middle = max(1, c.dim / 2), sides = c.levelSides
            convolution(c.channels, middle, side: (c.imageSize + 1) / 2)
            convolution(middle, c.dim, side: sides[0])
            for (i, depth) in c.levelDepths.enumerated() {
                let (width, side) = (c.dim << i, sides[i])
                if i > 0 { convolution(width / 2, width, side: side) }
                for j in 0..<depth {
                    if i < c.convolutionLevels {
                        convolution(width, width, side: side)
                        convolution(width, width, side: side)
                    } else {
                        addBlock(c, tokens: Double(side * side), dim: width, attention: j >= depth - c.levelAttentionBlocks[i])
                    }
                }
            }
        } else {
            let l = Double(tokens ?? c.tokens)
            gemmFLOPs += 2 * l * Double(c.channels * c.patchSize * c.patchSize) * Double(c.dim)
            for block in 0..<c.depth {
                addBlock(c, tokens: l, dim: c.dim, attention: block >= c.depth - c.attentionBlocks)
            }
        }
        scanFLOPs = 7 * scanUpdates
        gemmFLOPs += 2 * Double(c.outputWidth * c.classes)
    }

    /// One SSMamba block of width `dim` over `tokens` tokens.
    private mutating func addBlock(_ c: ModelConfiguration, tokens l: Double, dim width: Int, attention: Bool) {
        let dim = Double(width), e = Double(c.expand * width)
        let n = Double(c.stateSize), r = Double((width + 15) / 16), directions = Double(c.directions.count)
        if c.useLPR { otherFLOPs += 2 * 9 * l * dim }
        if attention {
            gemmFLOPs += 2 * l * dim * 3 * dim + 2 * 2 * l * l * dim + 2 * l * dim * dim
        } else {
            gemmFLOPs += 2 * l * dim * 2 * e + 2 * l * e * dim
            gemmFLOPs += directions * (2 * l * e * (r + 2 * n) + 2 * l * r * e)
            otherFLOPs += 2 * l * e * Double(c.localKernels.reduce(0, +))
            scanUpdates += directions * l * e * n
        }
        if c.mlpRatio > 0 { gemmFLOPs += 2 * 2 * l * dim * Double(c.mlpRatio) * dim }
    }
}
