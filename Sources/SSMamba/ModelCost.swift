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

    /// Cost for one image with `tokens` visible tokens (all of them unless masked).
    public init(config c: ModelConfiguration, tokens: Int? = nil) {
        let l = Double(tokens ?? c.tokens), dim = Double(c.dim), e = Double(c.expand * c.dim)
        let n = Double(c.stateSize), r = Double((c.dim + 15) / 16), directions = Double(c.directions.count)
        gemmFLOPs += 2 * l * Double(c.channels * c.patchSize * c.patchSize) * dim
        for block in 0..<c.depth {
            if c.useLPR { otherFLOPs += 2 * 9 * l * dim }
            if block >= c.depth - c.attentionBlocks {
                gemmFLOPs += 2 * l * dim * 3 * dim + 2 * 2 * l * l * dim + 2 * l * dim * dim
            } else {
                gemmFLOPs += 2 * l * dim * 2 * e + 2 * l * e * dim
                gemmFLOPs += directions * (2 * l * e * (r + 2 * n) + 2 * l * r * e)
                otherFLOPs += 2 * l * e * Double(c.localKernels.reduce(0, +))
                scanUpdates += directions * l * e * n
            }
            if c.mlpRatio > 0 { gemmFLOPs += 2 * 2 * l * dim * Double(c.mlpRatio) * dim }
        }
        scanFLOPs = 7 * scanUpdates
        gemmFLOPs += 2 * dim * Double(c.classes)
    }
}
