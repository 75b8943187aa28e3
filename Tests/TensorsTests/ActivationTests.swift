import Foundation
import Tensors
import XCTest

/// Each activation against libm in Double, and each backward against central differences.
final class ActivationTests: XCTestCase {
    typealias Forward = (UnsafeBufferPointer<Float>, UnsafeMutableBufferPointer<Float>) -> Void
    typealias Backward = (UnsafeBufferPointer<Float>, UnsafeBufferPointer<Float>, UnsafeMutableBufferPointer<Float>) -> Void

    struct Case {
        let name: String
        let forward: Forward
        let backward: Backward
        let reference: (Double) -> Double
    }

    static var cases: [Case] { [
        Case(name: "exp", forward: Activation.exp, backward: Activation.expBackward, reference: { Foundation.exp($0) }),
        Case(name: "sigmoid", forward: Activation.sigmoid, backward: Activation.sigmoidBackward,
             reference: { 1 / (1 + Foundation.exp(-$0)) }),
        Case(name: "silu", forward: Activation.silu, backward: Activation.siluBackward,
             reference: { $0 / (1 + Foundation.exp(-$0)) }),
        Case(name: "softplus", forward: Activation.softplus, backward: Activation.softplusBackward,
             reference: { $0 > 30 ? $0 : Foundation.log1p(Foundation.exp($0)) }),
        Case(name: "gelu tanh", forward: Activation.geluTanh, backward: Activation.geluTanhBackward,
             reference: { 0.5 * $0 * (1 + Foundation.tanh((2 / Double.pi).squareRoot() * ($0 + 0.044715 * $0 * $0 * $0))) }),
        Case(name: "gelu erf", forward: Activation.geluErf, backward: Activation.geluErfBackward,
             reference: { 0.5 * $0 * (1 + Foundation.erf($0 / 2.0.squareRoot())) }),
    ] }

    func testForwardMatchesLibmOnAwkwardLengths() {
        for c in Self.cases {
            for n in awkwardLengths {
                let x = randomArray(n, std: 3, seed: UInt64(n))
                let expected = x.map { Float(c.reference(Double($0))) }
                assertClose(apply(x, c.forward), expected, absolute: 1e-7, relative: 4e-7, "\(c.name) n=\(n)")
            }
        }
    }

    /// Long buffers are split over workers (from 2¹⁶ elements): on 1, 2 and 3 workers, with a
    /// length that is no multiple of 16 or of the worker count, every element is the one-worker
    /// result, the tail included; a two-input kernel and aliasing (out = a) likewise.
    func testLongBuffersSplitOverWorkersGiveTheOneWorkerResult() {
        let saved = BLAS.threads
        defer { BLAS.threads = saved }
        let n = (1 << 16) * 3 + 7
        let x = randomArray(n, std: 3, seed: 5), g = randomArray(n, seed: 6)
        BLAS.threads = 1
        let silu = apply(x, Activation.silu), siluBackward = apply(x, g, Activation.siluBackward)
        XCTAssertEqual(silu[n - 1], Float(Double(x[n - 1]) / (1 + Foundation.exp(-Double(x[n - 1])))), accuracy: 1e-5)
        for workers in [2, 3] {
            BLAS.threads = workers
            XCTAssertEqual(apply(x, Activation.silu), silu, "silu on \(workers) workers")
            XCTAssertEqual(apply(x, g, Activation.siluBackward), siluBackward, "silu backward on \(workers) workers")
            var inPlace = x
            inPlace.withUnsafeMutableBufferPointer { Activation.silu(UnsafeBufferPointer($0), into: $0) }
            XCTAssertEqual(inPlace, silu, "silu in place on \(workers) workers")
        }
    }

    func testForwardAtExtremes() {
        let x: [Float] = [-200, -100, -88, -50, -20, -1e-6, 0, 1e-6, 20, 50, 80]
        for c in Self.cases where c.name != "exp" {
            let expected = x.map { Float(c.reference(Double($0))) }
            let got = apply(x, c.forward)
            XCTAssertTrue(got.allSatisfy(\.isFinite), "\(c.name) produced a non-finite value: \(got)")
            assertClose(got, expected, absolute: 1e-30, relative: 1e-6, c.name)
        }
        // exp saturates instead of overflowing, and underflows to exactly 0.
        let e = apply([-1000, -87.5, 88, 1000], Activation.exp)
        XCTAssertEqual(e[0], 0)
        XCTAssertEqual(e[1], 0)
        XCTAssertEqual(Double(e[2]), Foundation.exp(88.0), accuracy: Foundation.exp(88.0) * 1e-6)
        XCTAssertTrue(e[3].isFinite && e[3] > 1e38)
    }

    /// The scan's 2ˣ: within 3e-7 relative of libm over [−126, 127]; below, 2⁻¹²⁶.
    func testExp2AgainstLibm() {
        var worst = 0.0
        var x: Float = -126
        while x <= 127 {
            let got = VectorMath.exp2(SIMD16(repeating: x))[0]
            worst = max(worst, abs(Double(got) / Foundation.exp2(Double(x)) - 1))
            x += 0.0137
        }
        XCTAssertLessThan(worst, 3e-7)
        XCTAssertEqual(VectorMath.exp2(SIMD16(repeating: -1000))[0], Float(sign: .plus, exponent: -126, significand: 1))
        XCTAssertEqual(VectorMath.exp2(SIMD16(repeating: 0))[0], 1, accuracy: 1e-7)
    }

    /// Φ (GELU's erf form) against the exact ½·erfc(−x/√2) in Double: within 1.2e-7 everywhere,
    /// and in the lower tail, where 1 + erf in float would keep no digit, within 2e-6 relative for
    /// −4 ≤ x ≤ −1 and 1e-5 down to x = −9 (Φ ≈ 1e-19; e^(−x²/2) carries the rounding of x²/2, a
    /// relative 6e-8·x²); 0 far below, 1 far above.
    func testNormalCDFAgainstTheExactFunction() {
        var (worstAbsolute, worstRelative, worstDeepRelative) = (0.0, 0.0, 0.0)
        var x: Float = -9
        while x <= 9 {
            let got = Double(VectorMath.normalCDF(SIMD16(repeating: x))[0])
            let exact = 0.5 * Foundation.erfc(-Double(x) / 2.0.squareRoot())
            worstAbsolute = max(worstAbsolute, abs(got - exact))
            if x <= -1 && x >= -4 { worstRelative = max(worstRelative, abs(got / exact - 1)) }
            if x < -4 { worstDeepRelative = max(worstDeepRelative, abs(got / exact - 1)) }
            x += 0.000_97
        }
        XCTAssertLessThan(worstAbsolute, 1.2e-7)
        XCTAssertLessThan(worstRelative, 2e-6)
        XCTAssertLessThan(worstDeepRelative, 1e-5)
        XCTAssertEqual(VectorMath.normalCDF(SIMD16(repeating: -40))[0], 0)
        XCTAssertEqual(VectorMath.normalCDF(SIMD16(repeating: 40))[0], 1)
        XCTAssertEqual(VectorMath.normalCDF(SIMD16(repeating: 0))[0], 0.5)
    }

    func testSoftplusAndSlopeAgreeWithTheSeparateKernels() {
        var x: Float = -30
        while x <= 30 {
            let v = SIMD16<Float>(repeating: x)
            let (value, slope) = VectorMath.softplusAndSlope(v)
            XCTAssertEqual(value[0], VectorMath.softplus(v)[0], accuracy: 1e-6 * max(1, abs(value[0])), "softplus(\(x))")
            XCTAssertEqual(slope[0], VectorMath.sigmoid(v)[0], accuracy: 1e-6 * max(1e-6, slope[0]), "σ(\(x))")
            x += 0.173
        }
    }

    func testBackwardMatchesFiniteDifferences() {
        for c in Self.cases {
            let x = randomArray(37, std: 2, seed: 11)
            let g = randomArray(37, seed: 12)
            let analytic = apply(x, g, c.backward)
            // Elementwise: ∂L/∂xᵢ = gᵢ·f′(xᵢ), with f′ by central differences in Double.
            let h = 1e-3
            let numeric = zip(x, g).map { xi, gi in
                Float(Double(gi) * (c.reference(Double(xi) + h) - c.reference(Double(xi) - h)) / (2 * h))
            }
            assertClose(analytic, numeric, absolute: 1e-5, relative: 1e-4, c.name)
            // And against the Float kernel itself, as a whole-function check.
            let kernelNumeric = numericalGradient(of: { apply($0, c.forward) }, at: x, weights: g)
            assertClose(analytic, kernelNumeric, absolute: 2e-3, relative: 2e-3, "\(c.name) (kernel FD)")
        }
    }
}
