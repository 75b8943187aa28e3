import Foundation
import Tensors

/// The selective scan of Mamba (S6), one direction, batch-major:
///
///     a_t = exp(Δ_t·A),  h_t = a_t ⊙ h_{t−1} + Δ_t·B_t·u_t,  y_t = ⟨C_t, h_t⟩ + D·u_t,  h₋₁ = 0
///     out_t = y_t · silu(z_t)   (when a gate z is given)
///
/// Shapes: u, Δ, z, out: (batch, length, channels); B, C: (batch, length, state);
/// A: (channels, state); D: (channels). Every (batch, channel) pair is an independent chain.
///
/// Backward (λ is the adjoint of h, run in reverse time; gy = ∂L/∂y):
///
///     λ_t = gy_t·C_t + a_{t+1} ⊙ λ_{t+1}
///     ∂C_t = Σ_d gy_{t,d} h_{t,d}          ∂B_t = Σ_d λ_{t,d} Δ_{t,d} u_{t,d}
///     ∂u_t = gy_t·D + Δ_t Σ_n λ_{t,n} B_{t,n}
///     ∂Δ_t = Σ_n λ_{t,n} a_{t,n} A_n h_{t−1,n} + u_t Σ_n λ_{t,n} B_{t,n}
///     ∂A   = Σ_{b,t} λ_t ⊙ a_t ⊙ h_{t−1} Δ_t      ∂D = Σ_{b,t} gy·u
///
/// Two implementations compute this: `reference` (plain loops, obviously right) and the fast
/// kernel (16 channels in the lanes of a register, the state loop inside, images × channel groups
/// split over cores; SelectiveScan+Fast.swift). Both take any shape; tests compare them.
public enum SelectiveScan {
    /// Whether the forward keeps every h_t for the backward (B·D·L·N floats) or the backward
    /// recomputes them chain by chain from h₋₁ = 0 (one extra forward pass, L·N floats per worker).
    public enum MemoryMode: String, Sendable, Codable {
        case storeStates, recompute
    }

    public struct Shape: Sendable, Equatable {
        public var batch, length, channels, state: Int
        public init(batch: Int, length: Int, channels: Int, state: Int) {
            (self.batch, self.length, self.channels, self.state) = (batch, length, channels, state)
        }
        var sequence: Int { batch * length * channels }
        var projection: Int { batch * length * state }
    }

    /// Read-only inputs of one scan.
    public struct Operands {
        public var u, delta, A, B, C, D: Tensor
        public var z: Tensor?
        /// When true, `delta` holds the pre-activation and the scan uses Δ = softplus(delta)
        /// (computed inside the kernels, no Δ tensor); `Gradients.delta` is then ∂L/∂(pre-activation)
        /// = ∂L/∂Δ · σ(delta).
        public var deltaSoftplus: Bool
        /// The visiting order: step t of image b is row `order[b·L + t]` of that image (a
        /// permutation of 0..<L per image), so a scan direction runs on tensors kept in grid order
        /// without gathering them; nil visits rows in storage order. Outputs and gradients are in
        /// storage order too.
        public var order: [Int]?
        /// When set, `delta` is the low-rank δ (batch, length, R) and the pre-activation is
        /// δ·Wᵀ + b (W: (channels, R), b: (channels)), computed inside the kernels (dt_proj fused:
        /// no (batch, length, channels) tensor). `Gradients.delta` is then ∂L/∂(δ·Wᵀ + b), of the
        /// shape of u; the caller's dt_proj backward takes it from there.
        public var deltaProjection: (weight: Tensor, bias: Tensor)?
        public init(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor, z: Tensor? = nil,
                    deltaSoftplus: Bool = false, order: [Int]? = nil, deltaProjection: (weight: Tensor, bias: Tensor)? = nil) {
            (self.u, self.delta, self.A, self.B, self.C, self.D, self.z) = (u, delta, A, B, C, D, z)
            (self.deltaSoftplus, self.order, self.deltaProjection) = (deltaSoftplus, order, deltaProjection)
        }

        /// The same operands with the pre-activation δ·Wᵀ + b materialised.
        var withProjectedDelta: Operands {
            guard let projection = deltaProjection else { return self }
            var plain = self
            plain.delta = Linear.apply(delta, weight: projection.weight, bias: projection.bias)
            plain.deltaProjection = nil
            return plain
        }

        /// The same operands with their rows in visiting order and no order.
        var inVisitingOrder: Operands {
            guard let order else { return self }
            var plain = self
            (plain.u, plain.delta) = (permuted(u, order: order), permuted(delta, order: order))
            (plain.B, plain.C, plain.z) = (permuted(B, order: order), permuted(C, order: order), z.map { permuted($0, order: order) })
            plain.order = nil
            return plain
        }

        /// The same operands with Δ = softplus(delta) materialised.
        var withPlainDelta: Operands {
            var plain = self
            if deltaSoftplus {
                plain.delta = delta.mapped(Activation.softplus)
                plain.deltaSoftplus = false
            }
            return plain
        }

        public var shape: Shape {
            Shape(batch: u.shape[0], length: u.shape[1], channels: u.shape[2], state: A.shape[1])
        }

        func validate() {
            let s = shape
            let deltaShape = deltaProjection.map { [s.batch, s.length, $0.weight.shape[1]] } ?? u.shape
            precondition(deltaProjection == nil || (deltaProjection!.weight.shape == [s.channels, deltaShape[2]]
                                                    && deltaProjection!.bias.shape == [s.channels]),
                         "selective scan Δ projection shapes disagree with \(s.channels) channels")
            precondition(u.shape == [s.batch, s.length, s.channels] && delta.shape == deltaShape
                         && A.shape == [s.channels, s.state] && B.shape == [s.batch, s.length, s.state]
                         && C.shape == B.shape && D.shape == [s.channels] && (z == nil || z!.shape == u.shape)
                         && (order == nil || order!.count == s.batch * s.length),
                         "selective scan operand shapes disagree: u \(u.shape) Δ \(delta.shape) A \(A.shape) B \(B.shape) C \(C.shape) D \(D.shape)")
        }
    }

    /// Gradients with respect to every operand (z only when gated).
    public struct Gradients {
        public var u, delta, A, B, C, D: Tensor
        public var z: Tensor?
    }

    // MARK: reference

    /// Plain-loop forward; returns out.
    public static func reference(_ x: Operands) -> Tensor {
        x.validate()
        if x.deltaProjection != nil { return reference(x.withProjectedDelta) }
        if let order = x.order {
            return unpermuted(reference(x.inVisitingOrder), order: order)
        }
        let x = x.withPlainDelta
        let s = x.shape
        var out = Tensor(zeros: x.u.shape)
        for b in 0..<s.batch {
            for d in 0..<s.channels {
                var h = [Float](repeating: 0, count: s.state)
                for t in 0..<s.length {
                    let dt = x.delta[b, t, d], u = x.u[b, t, d]
                    var y: Float = 0
                    for n in 0..<s.state {
                        h[n] = Foundation.exp(dt * x.A[d, n]) * h[n] + dt * x.B[b, t, n] * u
                        y += x.C[b, t, n] * h[n]
                    }
                    y += x.D[d] * u
                    if let z = x.z { y *= silu(z[b, t, d]) }
                    out[b, t, d] = y
                }
            }
        }
        return out
    }

    /// Plain-loop backward, storing every state; the definition the fast kernel is tested against.
    public static func referenceBackward(_ x: Operands, gradOutput g: Tensor) -> Gradients {
        x.validate()
        if x.deltaProjection != nil { return referenceBackward(x.withProjectedDelta, gradOutput: g) }
        if let order = x.order {
            var grads = referenceBackward(x.inVisitingOrder, gradOutput: permuted(g, order: order))
            grads.u = unpermuted(grads.u, order: order)
            grads.delta = unpermuted(grads.delta, order: order)
            grads.B = unpermuted(grads.B, order: order)
            grads.C = unpermuted(grads.C, order: order)
            grads.z = grads.z.map { unpermuted($0, order: order) }
            return grads
        }
        if x.deltaSoftplus {
            var grads = referenceBackward(x.withPlainDelta, gradOutput: g)
            grads.delta = grads.delta * x.delta.mapped(Activation.sigmoid)
            return grads
        }
        let s = x.shape
        var grads = Gradients(u: Tensor(zeros: x.u.shape), delta: Tensor(zeros: x.u.shape), A: Tensor(zeros: x.A.shape),
                              B: Tensor(zeros: x.B.shape), C: Tensor(zeros: x.C.shape), D: Tensor(zeros: x.D.shape),
                              z: x.z == nil ? nil : Tensor(zeros: x.u.shape))
        for b in 0..<s.batch {
            for d in 0..<s.channels {
                // Forward, keeping h_t for t = −1…L−1 (row 0 is h₋₁ = 0) and y_t.
                var h = [[Float]](repeating: [Float](repeating: 0, count: s.state), count: s.length + 1)
                var y = [Float](repeating: 0, count: s.length)
                for t in 0..<s.length {
                    let dt = x.delta[b, t, d], u = x.u[b, t, d]
                    var acc: Float = 0
                    for n in 0..<s.state {
                        h[t + 1][n] = Foundation.exp(dt * x.A[d, n]) * h[t][n] + dt * x.B[b, t, n] * u
                        acc += x.C[b, t, n] * h[t + 1][n]
                    }
                    y[t] = acc + x.D[d] * u
                }
                var lambda = [Float](repeating: 0, count: s.state)
                var aNext = [Float](repeating: 0, count: s.state)
                for t in stride(from: s.length - 1, through: 0, by: -1) {
                    let dt = x.delta[b, t, d], u = x.u[b, t, d]
                    var gy = g[b, t, d]
                    if let z = x.z {
                        let zv = z[b, t, d], sz = sigmoid(zv)
                        grads.z![b, t, d] = gy * y[t] * sz * (1 + zv * (1 - sz))
                        gy *= zv * sz
                    }
                    var lambdaDotB: Float = 0, deltaGrad: Float = 0
                    for n in 0..<s.state {
                        lambda[n] = gy * x.C[b, t, n] + aNext[n] * lambda[n]
                        let a = Foundation.exp(dt * x.A[d, n])
                        grads.C[b, t, n] += gy * h[t + 1][n]
                        grads.B[b, t, n] += lambda[n] * dt * u
                        grads.A[d, n] += lambda[n] * a * h[t][n] * dt
                        lambdaDotB += lambda[n] * x.B[b, t, n]
                        deltaGrad += lambda[n] * a * x.A[d, n] * h[t][n]
                        aNext[n] = a
                    }
                    grads.u[b, t, d] = gy * x.D[d] + dt * lambdaDotB
                    grads.delta[b, t, d] = deltaGrad + u * lambdaDotB
                    grads.D[d] += gy * u
                }
            }
        }
        return grads
    }

    /// Rows of (batch, length, …) in visiting order: out[b, t] = x[b, order[b·L + t]].
    static func permuted(_ x: Tensor, order: [Int]) -> Tensor { reordered(x, order: order, inverse: false) }

    /// The inverse of `permuted`.
    static func unpermuted(_ x: Tensor, order: [Int]) -> Tensor { reordered(x, order: order, inverse: true) }

    private static func reordered(_ x: Tensor, order: [Int], inverse: Bool) -> Tensor {
        var out = x
        let (length, width) = (x.shape[1], x.count / (x.shape[0] * x.shape[1]))
        for (step, row) in order.enumerated() {
            let stored = (step / length * length + row) * width, visited = step * width
            let (from, to) = inverse ? (visited, stored) : (stored, visited)
            for k in 0..<width { out.scalars[to + k] = x.scalars[from + k] }
        }
        return out
    }

    @inline(__always) static func sigmoid(_ v: Float) -> Float { 1 / (1 + Foundation.exp(-v)) }
    @inline(__always) static func silu(_ v: Float) -> Float { v * sigmoid(v) }
}
