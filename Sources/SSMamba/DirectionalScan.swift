import Foundation
import Tensors

/// The per-direction parameters of DMS and one direction's forward/backward around the selective
/// scan (PyTorch names under `scans.{i}`):
///
///     [δ, B, C] = x_proj(x_s)          δ: R, B: N, C: N    (no bias)
///     Δ = softplus(dt_proj(δ))         dt_proj: R → E, with bias
///     A = −exp(A_log),  y_s = scan(x_s, Δ, A, B, C, D)
final class DirectionalScan: ParameterOwner {
    let direction: ScanDirection
    let xProjection: Linear
    let dtProjection: Linear
    let aLog: Parameter
    let skip: Parameter
    let channels: Int, state: Int, rank: Int

    // Forward state for the backward.
    private var operands: SelectiveScan.Operands?
    private var saved: SelectiveScan.Saved?
    private var dtPreActivation = Tensor(zeros: [0])

    init(_ name: String, direction: ScanDirection, channels: Int, state: Int, rank: Int, using rng: inout RandomGenerator) {
        (self.direction, self.channels, self.state, self.rank) = (direction, channels, state, rank)
        xProjection = Linear(parameterName(name, "x_proj"), inFeatures: channels, outFeatures: rank + 2 * state, bias: false, using: &rng)
        dtProjection = Linear(parameterName(name, "dt_proj"), inFeatures: rank, outFeatures: channels, using: &rng)
        // MODEL.md: W_dt ~ U(±R^−½); dt log-uniform in [1e-3, 1e-1] floored at 1e-4, b_dt = softplus⁻¹(dt).
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

    /// x: (batch, count, E) already in this direction's visiting order → y in the same order.
    func forward(_ x: Tensor, mode: SelectiveScan.MemoryMode) -> Tensor {
        let (batch, count) = (x.shape[0], x.shape[1])
        let projected = xProjection.forward(x)  // (B, L, R + 2N)
        var delta = Tensor(zeros: [batch, count, rank])
        var bMatrix = Tensor(zeros: [batch, count, state]), cMatrix = Tensor(zeros: [batch, count, state])
        let width = rank + 2 * state
        projected.withUnsafeBufferPointer { ps in
            delta.withUnsafeMutableBufferPointer { ds in bMatrix.withUnsafeMutableBufferPointer { bs in cMatrix.withUnsafeMutableBufferPointer { cs in
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
        dtPreActivation = dtProjection.forward(delta)
        let step = dtPreActivation.mapped(Activation.softplus)
        let a = aLog.value.mapped(Activation.exp) * -1
        let x = SelectiveScan.Operands(u: x, delta: step, A: a, B: bMatrix, C: cMatrix, D: skip.value)
        let (out, saved) = SelectiveScan.forward(x, mode: mode)
        operands = x
        self.saved = saved
        return out
    }

    /// g: ∂L/∂y in visiting order → ∂L/∂x in visiting order; accumulates every parameter gradient.
    func backward(_ g: Tensor) -> Tensor {
        guard let operands, let saved else { preconditionFailure("scan direction backward without a forward") }
        let grads = SelectiveScan.backward(operands, saved: saved, gradOutput: g)
        // A = −exp(A_log) ⇒ ∂A_log = ∂A ⊙ A.
        aLog.gradient = aLog.gradient + grads.A * operands.A
        skip.gradient = skip.gradient + grads.D
        var gPre = Tensor(zeros: dtPreActivation.shape)
        dtPreActivation.withUnsafeBufferPointer { pre in grads.delta.withUnsafeBufferPointer { gd in
            gPre.withUnsafeMutableBufferPointer { Activation.softplusBackward(pre, gd, into: $0) }
        } }
        let gDeltaLowRank = dtProjection.backward(gPre)
        let (batch, count) = (g.shape[0], g.shape[1])
        let width = rank + 2 * state
        var gProjected = Tensor(zeros: [batch, count, width])
        gProjected.withUnsafeMutableBufferPointer { ps in
            gDeltaLowRank.withUnsafeBufferPointer { ds in grads.B.withUnsafeBufferPointer { bs in grads.C.withUnsafeBufferPointer { cs in
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
        return grads.u + xProjection.backward(gProjected)
    }
}
