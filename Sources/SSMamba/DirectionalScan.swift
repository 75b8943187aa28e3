import Foundation
import Randomness
import Tensors

/// The per-direction parameters of DMS and one direction's forward/backward around the selective
/// scan (PyTorch names under `scans.{i}`):
///
///     [δ, B, C] = x_proj(x_s)          δ: R, B: N, C: N    (no bias)
///     Δ = softplus(dt_proj(δ))         dt_proj: R → E, with bias (both inside the scan's kernels)
///     A = −exp(A_log),  y_s = scan(x_s, Δ, A, B, C, D)
///
/// Memory: between forward and backward it keeps only δ, B and C (R + 2N numbers per token);
/// the caller hands x_s back to the backward, and Δ is recomputed from δ (a rank-R product),
/// because the E-wide tensors of six directions in every block dominated training memory.
final class DirectionalScan: ParameterOwner, KeepsActivations {
    let direction: ScanDirection
    let xProjection: Linear
    let dtProjection: Linear
    let aLog: Parameter
    let skip: Parameter
    let channels: Int, state: Int, rank: Int

    // Forward state for the backward.
    private var lowRank = Tensor(zeros: [0])
    private var bMatrix = Tensor(zeros: [0]), cMatrix = Tensor(zeros: [0])
    private var saved: SelectiveScan.Saved?
    private var order: [Int] = []

    init(_ name: String, direction: ScanDirection, channels: Int, state: Int, rank: Int, using rng: inout RandomGenerator) {
        (self.direction, self.channels, self.state, self.rank) = (direction, channels, state, rank)
        xProjection = Linear(parameterName(name, "x_proj"), inFeatures: channels, outFeatures: rank + 2 * state, bias: false, using: &rng)
        dtProjection = Linear(parameterName(name, "dt_proj"), inFeatures: rank, outFeatures: channels, using: &rng)
        // docs/MODEL.md: W_dt ~ U(±R^−½); dt log-uniform in [1e-3, 1e-1] floored at 1e-4, b_dt = softplus⁻¹(dt).
        dtProjection.weight.value = Initialization.uniform([channels, rank], bound: 1 / Float(rank).squareRoot(), using: &rng)
        var dtBias = Tensor(zeros: [channels])
        for d in 0..<channels {
            let dt = max(Foundation.exp(rng.uniform(Float(Foundation.log(1e-3)), Float(Foundation.log(1e-1)))), 1e-4)
            dtBias.scalars[d] = dt + Foundation.log(-Foundation.expm1(-dt))
        }
        dtProjection.bias!.value = dtBias
        var aLogInit = Tensor(zeros: [channels, state])
        for d in 0..<channels { for n in 0..<state { aLogInit.scalars[d * state + n] = Foundation.log(Float(n + 1)) } }
        aLog = Parameter(parameterName(name, "A_log"), aLogInit, decays: false)
        skip = Parameter(parameterName(name, "D"), Tensor(repeating: 1, shape: [channels]), decays: false)
    }

    var parameters: [Parameter] { xProjection.parameters + dtProjection.parameters + [aLog, skip] }

    func releaseActivations() {
        lowRank = Tensor(zeros: [0])
        bMatrix = Tensor(zeros: [0])
        cMatrix = Tensor(zeros: [0])
        saved = nil
        order = []
        dtProjection.releaseActivations()
    }

    /// The scan's operands for input x and δ, B, C, visited in `order`.
    private func operands(_ x: Tensor, lowRank: Tensor, b: Tensor, c: Tensor, order: [Int]) -> SelectiveScan.Operands {
        SelectiveScan.Operands(u: x, delta: lowRank, A: aLog.value.mapped(Activation.exp) * -1,
                               B: b, C: c, D: skip.value, deltaSoftplus: true, order: order,
                               deltaProjection: (dtProjection.weight.value, dtProjection.bias!.value))
    }

    /// x: (batch, count, E) in grid (storage) order → y in the same order, the scan visiting the
    /// tokens of each image in `order` (the direction's order for the grid).
    /// Keeps δ, B, C and the scan's saved state for the backward; with `keeping` false nothing is stored for a backward, so threads may run it at once.
    func forward(_ x: Tensor, order: [Int], mode: SelectiveScan.MemoryMode, keeping: Bool = true) -> Tensor {
        let (batch, count) = (x.shape[0], x.shape[1])
        let projected = Linear.apply(x, weight: xProjection.weight.value, bias: nil)  // (B, L, R + 2N); x is kept by the caller
        // The three are split out of `projected`, every element written.
        var lowRank = Tensor(uninitialized: [batch, count, rank])
        var bMatrix = Tensor(uninitialized: [batch, count, state])
        var cMatrix = Tensor(uninitialized: [batch, count, state])
        let width = rank + 2 * state
        projected.withUnsafeBufferPointer { ps in
            lowRank.withUnsafeMutableBufferPointer { ds in bMatrix.withUnsafeMutableBufferPointer { bs in cMatrix.withUnsafeMutableBufferPointer { cs in
                for row in 0..<(batch * count) {
                    let base = row * width
                    for r in 0..<rank { ds[row * rank + r] = ps[base + r] }
                    for n in 0..<state {
                        bs[row * state + n] = ps[base + rank + n]
                        cs[row * state + n] = ps[base + rank + state + n]
                    }
                }
            } } }
        }
        let operands = operands(x, lowRank: lowRank, b: bMatrix, c: cMatrix, order: order)
        // Without a backward to come, nothing is stored (`recompute` keeps no states).
        let (out, saved) = SelectiveScan.forward(operands, mode: keeping ? mode : .recompute)
        if keeping { (self.lowRank, self.bMatrix, self.cMatrix, self.order, self.saved) = (lowRank, bMatrix, cMatrix, order, saved) }
        return out
    }

    /// g: ∂L/∂y, x: the forward's input (both in storage order) → ∂L/∂x; accumulates every
    /// parameter gradient.
    func backward(_ g: Tensor, input x: Tensor) -> Tensor {
        guard let saved else { preconditionFailure("scan direction backward without a forward") }
        let operands = operands(x, lowRank: lowRank, b: bMatrix, c: cMatrix, order: order)
        let grads = SelectiveScan.backward(operands, saved: saved, gradOutput: g)
        // A = −exp(A_log) ⇒ ∂A_log = ∂A ⊙ A.
        aLog.gradient = aLog.gradient + grads.A * operands.A
        skip.gradient = skip.gradient + grads.D
        let gLowRank = dtProjection.backward(grads.delta, input: lowRank)  // the scan's ∂ is w.r.t. the pre-activation
        let (batch, count) = (g.shape[0], g.shape[1])
        let width = rank + 2 * state
        var gProjected = Tensor(uninitialized: [batch, count, width])  // every element written below
        gProjected.withUnsafeMutableBufferPointer { ps in
            gLowRank.withUnsafeBufferPointer { ds in grads.B.withUnsafeBufferPointer { bs in grads.C.withUnsafeBufferPointer { cs in
                for row in 0..<(batch * count) {
                    let base = row * width
                    for r in 0..<rank { ps[base + r] = ds[row * rank + r] }
                    for n in 0..<state {
                        ps[base + rank + n] = bs[row * state + n]
                        ps[base + rank + state + n] = cs[row * state + n]
                    }
                }
            } } }
        }
        return grads.u + xProjection.backward(gProjected, input: x)
    }
}
