import Tensors

/// LPR (docs/MODEL.md): X + DWConv3×3(X) on the token grid, PyTorch's `Conv2d(C, C, 3, padding=1,
/// groups=C)` with weight (C, 1, 3, 3), zero-initialised so the block starts as the identity. It
/// replaces absolute position embeddings.
///
/// Sparse semantics: only the tokens in the `TokenGrid` exist; every other cell is 0 on input,
/// and outputs are produced only at existing tokens. With the full grid it is the dense conv:
///
///     y[p] = x[p] + bias + Σ_{dy,dx ∈ {−1,0,1}} w[dy+1, dx+1] ⊙ x[p + (dy, dx)]
public final class LocalPerceptionResidual: ParameterOwner, KeepsActivations {
    public let weight: Parameter
    public let bias: Parameter
    public let channels: Int
    private var input = Tensor(zeros: [0])
    private var grid: TokenGrid?

    public init(_ name: String, channels: Int) {
        self.channels = channels
        weight = Parameter(parameterName(name, "conv.weight"), Tensor(zeros: [channels, 1, 3, 3]), decays: true)
        bias = Parameter(parameterName(name, "conv.bias"), Tensor(zeros: [channels]), decays: false)
    }

    public var parameters: [Parameter] { [weight, bias] }

    /// For each token, the token index (within the batch) of each of its 9 neighbours, or −1.
    static func neighbours(_ grid: TokenGrid) -> [Int] {
        var result = [Int](repeating: -1, count: grid.batch * grid.count * 9)
        var tokenAt = [Int](repeating: -1, count: grid.cells)
        for b in 0..<grid.batch {
            for k in 0..<grid.count { tokenAt[grid.positions[b * grid.count + k]] = b * grid.count + k }
            for k in 0..<grid.count {
                let cell = grid.positions[b * grid.count + k]
                let (i, j) = (cell / grid.width, cell % grid.width)
                for dy in -1...1 { for dx in -1...1 {
                    let (ni, nj) = (i + dy, j + dx)
                    guard ni >= 0 && ni < grid.height && nj >= 0 && nj < grid.width else { continue }
                    result[(b * grid.count + k) * 9 + (dy + 1) * 3 + (dx + 1)] = tokenAt[ni * grid.width + nj]
                } }
            }
            for k in 0..<grid.count { tokenAt[grid.positions[b * grid.count + k]] = -1 }
        }
        return result
    }

    /// Weight as 9 tap rows across channels.
    private func tapRows() -> [Float] {
        var rows = [Float](repeating: 0, count: 9 * channels)
        for c in 0..<channels { for tap in 0..<9 { rows[tap * channels + c] = weight.value.scalars[c * 9 + tap] } }
        return rows
    }

    /// With `keeping` false nothing is stored for a backward, so threads may run it at once.
    public func forward(_ x: Tensor, grid: TokenGrid, keeping: Bool = true) -> Tensor {
        precondition(x.shape == [grid.batch, grid.count, channels], "LPR expects \([grid.batch, grid.count, channels]), got \(x.shape)")
        if keeping { (input, self.grid) = (x, grid) }
        let near = LocalPerceptionResidual.neighbours(grid)
        let taps = tapRows()
        var y = x
        let c = channels
        x.withUnsafeBufferPointer { xs in y.withUnsafeMutableBufferPointer { ys in
            taps.withUnsafeBufferPointer { ws in bias.value.withUnsafeBufferPointer { bs in
                for token in 0..<(grid.batch * grid.count) {
                    let out = UnsafeMutableBufferPointer(rebasing: ys[(token * c)..<((token + 1) * c)])
                    Elementwise.accumulate(bs, into: out)
                    for tap in 0..<9 {
                        let other = near[token * 9 + tap]
                        guard other >= 0 else { continue }
                        multiplyAccumulate(UnsafeBufferPointer(rebasing: xs[(other * c)..<((other + 1) * c)]),
                                           UnsafeBufferPointer(rebasing: ws[(tap * c)..<((tap + 1) * c)]), into: out)
                    }
                }
            } }
        } }
        return y
    }

    public func releaseActivations() {
        input = Tensor(zeros: [0])
        grid = nil
    }

    public func backward(_ g: Tensor) -> Tensor {
        guard let grid else { preconditionFailure("LPR backward without a forward") }
        precondition(g.shape == input.shape, "LPR gradient shape \(g.shape) differs from \(input.shape)")
        let near = LocalPerceptionResidual.neighbours(grid)
        let taps = tapRows()
        var gTaps = [Float](repeating: 0, count: 9 * channels)
        var gx = g  // the identity path
        let c = channels
        g.withUnsafeBufferPointer { gs in input.withUnsafeBufferPointer { xs in gx.withUnsafeMutableBufferPointer { gxs in
            taps.withUnsafeBufferPointer { ws in gTaps.withUnsafeMutableBufferPointer { gws in
                bias.gradient.withUnsafeMutableBufferPointer { gbs in
                    for token in 0..<(grid.batch * grid.count) {
                        let upstream = UnsafeBufferPointer(rebasing: gs[(token * c)..<((token + 1) * c)])
                        Elementwise.accumulate(upstream, into: gbs)
                        for tap in 0..<9 {
                            let other = near[token * 9 + tap]
                            guard other >= 0 else { continue }
                            let range = (other * c)..<((other + 1) * c)
                            multiplyAccumulate(upstream, UnsafeBufferPointer(rebasing: ws[(tap * c)..<((tap + 1) * c)]),
                                               into: UnsafeMutableBufferPointer(rebasing: gxs[range]))
                            multiplyAccumulate(upstream, UnsafeBufferPointer(rebasing: xs[range]),
                                               into: UnsafeMutableBufferPointer(rebasing: gws[(tap * c)..<((tap + 1) * c)]))
                        }
                    }
                }
            } }
        } } }
        weight.gradient.withUnsafeMutableBufferPointer { gw in
            for cc in 0..<c { for tap in 0..<9 { gw[cc * 9 + tap] += gTaps[tap * c + cc] } }
        }
        return gx
    }
}
