import Foundation
import Randomness
import SSMamba
import Tensors
import XCTest

final class SelectiveScanTests: XCTestCase {
    /// Random operands of a realistic range: Δ in (0.001, 0.1)·(a few), A = −(1…N) like the init.
    func operands(batch: Int, length: Int, channels: Int, state: Int, gated: Bool, seed: UInt64) -> SelectiveScan.Operands {
        var rng = RandomGenerator(seed: seed)
        var A = Tensor(zeros: [channels, state])
        for d in 0..<channels { for n in 0..<state { A[d, n] = -Float(n + 1) * rng.uniform(0.5, 1.5) } }
        return SelectiveScan.Operands(
            u: Tensor.normal([batch, length, channels], using: &rng),
            delta: Tensor.uniform([batch, length, channels], low: 0.01, high: 0.5, using: &rng),
            A: A,
            B: Tensor.normal([batch, length, state], using: &rng),
            C: Tensor.normal([batch, length, state], using: &rng),
            D: Tensor.normal([channels], using: &rng),
            z: gated ? Tensor.normal([batch, length, channels], using: &rng) : nil)
    }

    func testFastForwardMatchesReference() {
        for gated in [false, true] {
            // Whole lane groups, a zero-padded last group, one short group; the usual and an odd state size.
            for (batch, length, channels, state) in [(1, 1, 4, 16), (3, 17, 32, 16), (2, 50, 20, 16), (2, 9, 3, 3)] {
                let x = operands(batch: batch, length: length, channels: channels, state: state, gated: gated, seed: 1)
                let expected = SelectiveScan.reference(x)
                for mode in [SelectiveScan.MemoryMode.recompute, .storeStates] {
                    let (out, _) = SelectiveScan.forward(x, mode: mode)
                    let error = GradientCheck.relativeError(out, expected)
                    XCTAssertLessThan(error, 1e-5, "gated \(gated) \(batch)×\(length)×\(channels)×\(state) \(mode)")
                }
            }
        }
    }

    func testFastBackwardMatchesReferenceInBothMemoryModes() {
        for (gated, channels, state) in [(false, 40, 16), (true, 40, 16), (false, 5, 3), (true, 5, 3)] {
            let x = operands(batch: 3, length: 23, channels: channels, state: state, gated: gated, seed: 2)
            var rng = RandomGenerator(seed: 3)
            let g = Tensor.normal(x.u.shape, using: &rng)
            let expected = SelectiveScan.referenceBackward(x, gradOutput: g)
            for mode in [SelectiveScan.MemoryMode.recompute, .storeStates] {
                let (_, saved) = SelectiveScan.forward(x, mode: mode)
                let got = SelectiveScan.backward(x, saved: saved, gradOutput: g)
                let pairs: [(String, Tensor, Tensor)] = [("u", got.u, expected.u), ("Δ", got.delta, expected.delta),
                                                         ("A", got.A, expected.A), ("B", got.B, expected.B),
                                                         ("C", got.C, expected.C), ("D", got.D, expected.D)]
                for (name, a, e) in pairs {
                    XCTAssertLessThan(GradientCheck.relativeError(a, e), 1e-5, "\(name) gated \(gated) \(channels)×\(state) \(mode)")
                }
                if gated { XCTAssertLessThan(GradientCheck.relativeError(got.z!, expected.z!), 1e-5, "z \(mode)") }
            }
        }
    }

    func testReferenceBackwardMatchesFiniteDifferences() {
        // The plain loops, state size 3.
        for gated in [false, true] {
            let x = operands(batch: 2, length: 6, channels: 3, state: 3, gated: gated, seed: 4)
            var rng = RandomGenerator(seed: 5)
            let w = Tensor.normal(x.u.shape, using: &rng)
            let grads = SelectiveScan.backward(x, saved: SelectiveScan.forward(x).saved, gradOutput: w)
            func check(_ name: String, _ analytic: Tensor, _ keyPath: WritableKeyPath<SelectiveScan.Operands, Tensor>) {
                let numeric = GradientCheck.numeric(x[keyPath: keyPath], step: 1e-2) { probe in
                    var y = x
                    y[keyPath: keyPath] = probe
                    return GradientCheck.loss(SelectiveScan.reference(y), w)
                }
                let error = GradientCheck.relativeError(analytic, numeric)
                XCTAssertLessThan(error, 5e-3, "\(name) gated \(gated): \(error)")
            }
            check("u", grads.u, \.u)
            check("Δ", grads.delta, \.delta)
            check("A", grads.A, \.A)
            check("B", grads.B, \.B)
            check("C", grads.C, \.C)
            check("D", grads.D, \.D)
            if gated {
                let numeric = GradientCheck.numeric(x.z!, step: 1e-2) { probe in
                    var y = x
                    y.z = probe
                    return GradientCheck.loss(SelectiveScan.reference(y), w)
                }
                XCTAssertLessThan(GradientCheck.relativeError(grads.z!, numeric), 5e-3, "z")
            }
        }
    }

    func testFastKernelGradientMatchesFiniteDifferences() {
        let x = operands(batch: 2, length: 5, channels: 4, state: 16, gated: true, seed: 6)
        var rng = RandomGenerator(seed: 7)
        let w = Tensor.normal(x.u.shape, using: &rng)
        let grads = SelectiveScan.backward(x, saved: SelectiveScan.forward(x).saved, gradOutput: w)
        let numeric = GradientCheck.numeric(x.delta, step: 1e-2) { probe in
            var y = x
            y.delta = probe
            return GradientCheck.loss(SelectiveScan.forward(y).out, w)
        }
        XCTAssertLessThan(GradientCheck.relativeError(grads.delta, numeric), 5e-3)
    }

    /// Δ = softplus(pre-activation) inside the kernels: the same outputs and gradients as the
    /// reference given softplus(pre) and the chain rule; ∂pre against finite differences.
    func testSoftplusDeltaInsideTheKernels() {
        for (channels, state) in [(20, 16), (3, 3)] {
            var x = operands(batch: 2, length: 11, channels: channels, state: state, gated: true, seed: 8)
            var rng = RandomGenerator(seed: 9)
            x.delta = Tensor.normal(x.u.shape, using: &rng) - Tensor(repeating: 2, shape: x.u.shape)  // Δ ≈ 0.05…0.7
            x.deltaSoftplus = true
            var plain = x
            plain.delta = x.delta.mapped(Activation.softplus)
            plain.deltaSoftplus = false
            let w = Tensor.normal(x.u.shape, using: &rng)
            for mode in [SelectiveScan.MemoryMode.recompute, .storeStates] {
                let (out, saved) = SelectiveScan.forward(x, mode: mode)
                XCTAssertLessThan(GradientCheck.relativeError(out, SelectiveScan.reference(plain)), 1e-5, "\(channels)×\(state) \(mode)")
                let grads = SelectiveScan.backward(x, saved: saved, gradOutput: w)
                let expected = SelectiveScan.referenceBackward(x, gradOutput: w)
                XCTAssertLessThan(GradientCheck.relativeError(grads.delta, expected.delta), 1e-5)
                XCTAssertLessThan(GradientCheck.relativeError(grads.u, expected.u), 1e-5)
            }
            let grads = SelectiveScan.referenceBackward(x, gradOutput: w)
            let numeric = GradientCheck.numeric(x.delta, step: 1e-2) { probe in
                var y = x
                y.delta = probe
                return GradientCheck.loss(SelectiveScan.reference(y), w)
            }
            XCTAssertLessThan(GradientCheck.relativeError(grads.delta, numeric), 5e-3, "\(channels)×\(state)")
        }
    }

    /// A visiting order (a permutation per image) gives what gathering the rows into that order,
    /// scanning and scattering back gives; the fast kernels against the reference, both ways.
    func testVisitingOrderEqualsGatherScanScatter() {
        var rng = RandomGenerator(seed: 13)
        for (channels, state, gated) in [(20, 16, false), (3, 3, true)] {
            var x = operands(batch: 2, length: 9, channels: channels, state: state, gated: gated, seed: 14)
            x.order = (0..<2).flatMap { _ in (0..<9).shuffled(using: &rng) }
            var gathered = x
            gathered.order = nil
            let order = x.order!
            func permute(_ t: Tensor) -> Tensor {
                var out = t
                let width = t.count / 18
                for (step, row) in order.enumerated() {
                    for k in 0..<width { out.scalars[step * width + k] = t.scalars[((step / 9) * 9 + row) * width + k] }
                }
                return out
            }
            (gathered.u, gathered.delta, gathered.B, gathered.C) = (permute(x.u), permute(x.delta), permute(x.B), permute(x.C))
            gathered.z = x.z.map(permute)
            let w = Tensor.normal(x.u.shape, using: &rng)
            for mode in [SelectiveScan.MemoryMode.recompute, .storeStates] {
                let (out, saved) = SelectiveScan.forward(x, mode: mode)
                XCTAssertLessThan(GradientCheck.relativeError(permute(out), SelectiveScan.reference(gathered)), 1e-5)
                XCTAssertLessThan(GradientCheck.relativeError(out, SelectiveScan.reference(x)), 1e-5)
                let grads = SelectiveScan.backward(x, saved: saved, gradOutput: w)
                let expected = SelectiveScan.referenceBackward(gathered, gradOutput: permute(w))
                for (name, got, want) in [("u", grads.u, expected.u), ("Δ", grads.delta, expected.delta),
                                          ("B", grads.B, expected.B), ("C", grads.C, expected.C)] {
                    XCTAssertLessThan(GradientCheck.relativeError(permute(got), want), 1e-5, "\(name) \(channels)×\(state) \(mode)")
                }
                XCTAssertLessThan(GradientCheck.relativeError(grads.A, expected.A), 1e-5)
                if gated { XCTAssertLessThan(GradientCheck.relativeError(permute(grads.z!), expected.z!), 1e-5) }
            }
        }
    }

    /// dt_proj fused: Δ's pre-activation δ·Wᵀ + b computed inside the kernels gives what the
    /// materialised pre-activation gives, in both directions, with a visiting order too.
    func testFusedDeltaProjectionEqualsTheMaterialisedOne() {
        var rng = RandomGenerator(seed: 15)
        for (channels, state, rank) in [(20, 16, 2), (3, 3, 1)] {
            var x = operands(batch: 2, length: 7, channels: channels, state: state, gated: false, seed: 16)
            x.deltaSoftplus = true
            x.order = (0..<2).flatMap { _ in (0..<7).shuffled(using: &rng) }
            x.delta = Tensor.normal([2, 7, rank], using: &rng)
            x.deltaProjection = (Tensor.normal([channels, rank], using: &rng), Tensor.normal([channels], using: &rng) - Tensor(repeating: 2, shape: [channels]))
            var plain = x
            plain.delta = Linear.apply(x.delta, weight: x.deltaProjection!.weight, bias: x.deltaProjection!.bias)
            plain.deltaProjection = nil
            let w = Tensor.normal(x.u.shape, using: &rng)
            let (out, saved) = SelectiveScan.forward(x)
            let (expected, plainSaved) = SelectiveScan.forward(plain)
            XCTAssertLessThan(GradientCheck.relativeError(out, expected), 1e-6)
            XCTAssertLessThan(GradientCheck.relativeError(out, SelectiveScan.reference(x)), 1e-5)
            let grads = SelectiveScan.backward(x, saved: saved, gradOutput: w)
            let plainGrads = SelectiveScan.backward(plain, saved: plainSaved, gradOutput: w)
            XCTAssertEqual(grads.delta.shape, x.u.shape)
            XCTAssertLessThan(GradientCheck.relativeError(grads.delta, plainGrads.delta), 1e-6)
            XCTAssertLessThan(GradientCheck.relativeError(grads.u, plainGrads.u), 1e-6)
            XCTAssertLessThan(GradientCheck.relativeError(grads.delta, SelectiveScan.referenceBackward(x, gradOutput: w).delta), 1e-5)
        }
    }
}
