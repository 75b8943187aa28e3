import Foundation
import Randomness

/// A run-time check of the kernels against plain scalar references, for `ssmamba selfcheck`:
/// it catches a BLAS or CPU that computes wrong results on the machine at hand.
public enum TensorSelfCheck {
    public struct Result: Sendable {
        public let name: String
        /// Largest absolute difference, relative to the reference's largest magnitude.
        public let error: Float
        public let tolerance: Float
    }

    public static func all(using rng: inout RandomGenerator) -> [Result] {
        var results: [Result] = []
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let (m, n, k) = (37, 29, 53)
            let a = Tensor.normal(ta ? [k, m] : [m, k], using: &rng)
            let b = Tensor.normal(tb ? [n, k] : [k, n], using: &rng)
            let fast = a.matmul(b, transposeSelf: ta, transposeOther: tb)
            var reference = [Float](repeating: 0, count: m * n)
            for i in 0..<m { for j in 0..<n {
                var s: Double = 0
                for p in 0..<k {
                    let av = ta ? a[p, i] : a[i, p], bv = tb ? b[j, p] : b[p, j]
                    s += Double(av) * Double(bv)
                }
                reference[i * n + j] = Float(s)
            } }
            results.append(compare("sgemm \(ta ? "Aᵀ" : "A")·\(tb ? "Bᵀ" : "B") (37×29×53)", fast.scalars, reference, 1e-5))
        }
        let x = Tensor.normal([1_003], std: 4, using: &rng)
        func unary(_ name: String, _ kernel: (UnsafeBufferPointer<Float>, UnsafeMutableBufferPointer<Float>) -> Void,
                   _ reference: (Double) -> Double, _ tolerance: Float) {
            results.append(compare(name, x.mapped(kernel).scalars, x.scalars.map { Float(reference(Double($0))) }, tolerance))
        }
        unary("exp", Activation.exp, { Foundation.exp($0) }, 1e-6)
        unary("sigmoid", Activation.sigmoid, { 1 / (1 + Foundation.exp(-$0)) }, 1e-6)
        unary("silu", Activation.silu, { $0 / (1 + Foundation.exp(-$0)) }, 1e-6)
        unary("softplus", Activation.softplus, { Foundation.log1p(Foundation.exp($0)) }, 1e-6)
        unary("gelu (tanh)", Activation.geluTanh,
              { 0.5 * $0 * (1 + Foundation.tanh(0.7978845608 * ($0 + 0.044715 * $0 * $0 * $0))) }, 1e-6)
        unary("gelu (erf)", Activation.geluErf, { 0.5 * $0 * (1 + Foundation.erf($0 / 2.0.squareRoot())) }, 1e-6)

        let rows = x.scalars.count / 17
        let logits = Tensor(shape: [rows, 17], scalars: Array(x.scalars.prefix(rows * 17)))
        var softmaxReference = [Float]()
        for r in 0..<rows {
            let row = (0..<17).map { Double(logits[r, $0]) }
            let top = row.max()!
            let e = row.map { Foundation.exp($0 - top) }
            let total = e.reduce(0, +)
            softmaxReference += e.map { Float($0 / total) }
        }
        results.append(compare("softmax (59×17)", logits.softmax().scalars, softmaxReference, 1e-6))

        let pixels = (0..<1_003).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let floats = Tensor(bytes: pixels, shape: [1_003], scale: 1 / 255)
        results.append(compare("uint8 → float", floats.scalars, pixels.map { Float($0) / 255 }, 1e-7))
        results.append(compare("float → uint8", (floats * 255).bytes().map(Float.init), pixels.map(Float.init), 0))
        return results
    }

    /// max |fast − reference| / max(1, max |reference|).
    static func compare(_ name: String, _ fast: [Float], _ reference: [Float], _ tolerance: Float) -> Result {
        var worst: Float = 0, scale: Float = 1
        for (f, r) in zip(fast, reference) {
            worst = max(worst, abs(f - r))
            scale = max(scale, abs(r))
        }
        if fast.count != reference.count || worst.isNaN { worst = .infinity }
        return Result(name: name, error: worst / scale, tolerance: tolerance)
    }

    /// GFLOP/s of a square sgemm with `BLAS.threads` workers (best of five calls after a warm-up).
    public static func gemmRate(size: Int) -> Double {
        var rng = RandomGenerator(seed: 1)
        let a = Tensor.uniform([size, size], using: &rng), b = Tensor.uniform([size, size], using: &rng)
        _ = a.matmul(b)
        var best = Double.infinity
        for _ in 0..<5 {
            let start = DispatchTime.now().uptimeNanoseconds
            _ = a.matmul(b)
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return 2 * pow(Double(size), 3) / best / 1e9
    }
}
