import Foundation

/// Softmax along one axis, viewing the tensor as (outer, length, inner).
///
/// y = e^(x − max x) / Σ e^(x − max x) (the max shift keeps every exponent ≤ 0).
/// Backward: ∂L/∂x = y ⊙ (g − Σₖ gₖyₖ), the sum taken along the same axis.
public enum Softmax {
    public static func forward(_ x: UnsafeBufferPointer<Float>, outer: Int, length: Int, inner: Int,
                               into y: UnsafeMutableBufferPointer<Float>) {
        precondition(x.count == outer * length * inner && y.count == x.count, "softmax shape mismatch")
        guard length > 0 else { return }
        if inner == 1 {
            for o in 0..<outer {
                let range = (o * length)..<((o + 1) * length)
                let row = UnsafeBufferPointer(rebasing: x[range])
                let out = UnsafeMutableBufferPointer(rebasing: y[range])
                let shift = SIMDLoops.max(row)
                SIMDLoops.map(row, out) { VectorMath.exp($0 - shift) }
                let total = Reduction.sum(UnsafeBufferPointer(out))
                Elementwise.scale(UnsafeBufferPointer(out), by: 1 / total, into: out)
            }
            return
        }
        for o in 0..<outer {
            for i in 0..<inner {
                let base = o * length * inner + i
                var shift = -Float.infinity
                for k in 0..<length { shift = max(shift, x[base + k * inner]) }
                var total: Float = 0
                for k in 0..<length {
                    let e = Foundation.exp(x[base + k * inner] - shift)
                    y[base + k * inner] = e
                    total += e
                }
                for k in 0..<length { y[base + k * inner] /= total }
            }
        }
    }

    /// ∂L/∂x from the forward output y and the upstream gradient g.
    public static func backward(_ y: UnsafeBufferPointer<Float>, _ g: UnsafeBufferPointer<Float>,
                                outer: Int, length: Int, inner: Int, into gx: UnsafeMutableBufferPointer<Float>) {
        precondition(y.count == outer * length * inner && g.count == y.count && gx.count == y.count,
                     "softmax shape mismatch")
        if inner == 1 {
            for o in 0..<outer {
                let range = (o * length)..<((o + 1) * length)
                let yRow = UnsafeBufferPointer(rebasing: y[range])
                let weighted = SIMDLoops.dot(yRow, UnsafeBufferPointer(rebasing: g[range]))
                SIMDLoops.map(yRow, UnsafeBufferPointer(rebasing: g[range]),
                              UnsafeMutableBufferPointer(rebasing: gx[range])) { $0 * ($1 - weighted) }
            }
            return
        }
        for o in 0..<outer {
            for i in 0..<inner {
                let base = o * length * inner + i
                var weighted: Float = 0
                for k in 0..<length { weighted += g[base + k * inner] * y[base + k * inner] }
                for k in 0..<length {
                    let index = base + k * inner
                    gx[index] = y[index] * (g[index] - weighted)
                }
            }
        }
    }
}

extension Tensor {
    /// Softmax along `axis` (default: the last).
    public func softmax(alongAxis axis: Int? = nil) -> Tensor {
        let (outer, length, inner) = Reduction.split(shape, axis: axis ?? rank - 1)
        return mapped { Softmax.forward($0, outer: outer, length: length, inner: inner, into: $1) }
    }
}
