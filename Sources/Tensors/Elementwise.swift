/// Elementwise arithmetic on buffers of equal length. Outputs may alias inputs.
///
/// Backward rules (for a loss L, g = ∂L/∂out): add passes g to both inputs; subtract passes g and
/// −g; multiply gives g·b and g·a; scale gives g·α.
public enum Elementwise {
    public static func add(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>,
                           into out: UnsafeMutableBufferPointer<Float>) {
        SIMDLoops.map(a, b, out) { $0 + $1 }
    }

    public static func subtract(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>,
                                into out: UnsafeMutableBufferPointer<Float>) {
        SIMDLoops.map(a, b, out) { $0 - $1 }
    }

    public static func multiply(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>,
                                into out: UnsafeMutableBufferPointer<Float>) {
        SIMDLoops.map(a, b, out) { $0 * $1 }
    }

    /// out = α·a
    public static func scale(_ a: UnsafeBufferPointer<Float>, by alpha: Float,
                             into out: UnsafeMutableBufferPointer<Float>) {
        SIMDLoops.map(a, out) { $0 * alpha }
    }

    /// y ← y + α·x
    public static func accumulate(_ x: UnsafeBufferPointer<Float>, scaledBy alpha: Float = 1,
                                  into y: UnsafeMutableBufferPointer<Float>) {
        SIMDLoops.map(x, UnsafeBufferPointer(y), y) { $1.addingProduct($0, alpha) }
    }
}

extension Tensor {
    /// Applies a binary buffer kernel to two tensors of the same shape, e.g. an activation's
    /// backward: `x.zipped(g, Activation.siluBackward)`. The kernel must write every element of
    /// its output (which starts uninitialized).
    @inline(__always)
    public func zipped(_ other: Tensor, _ kernel: (UnsafeBufferPointer<Float>, UnsafeBufferPointer<Float>,
                                            UnsafeMutableBufferPointer<Float>) -> Void) -> Tensor {
        precondition(shape == other.shape, "shape mismatch: \(shape) vs \(other.shape)")
        var result = Tensor(uninitialized: shape)
        withUnsafeBufferPointer { a in
            other.withUnsafeBufferPointer { b in
                result.withUnsafeMutableBufferPointer { kernel(a, b, $0) }
            }
        }
        return result
    }

    /// Applies a unary buffer kernel, returning a tensor of the same shape. The kernel must write
    /// every element of its output (which starts uninitialized).
    @inline(__always)
    public func mapped(_ kernel: (UnsafeBufferPointer<Float>, UnsafeMutableBufferPointer<Float>) -> Void) -> Tensor {
        var result = Tensor(uninitialized: shape)
        withUnsafeBufferPointer { a in result.withUnsafeMutableBufferPointer { kernel(a, $0) } }
        return result
    }

    public static func + (lhs: Tensor, rhs: Tensor) -> Tensor { lhs.zipped(rhs, Elementwise.add) }
    public static func - (lhs: Tensor, rhs: Tensor) -> Tensor { lhs.zipped(rhs, Elementwise.subtract) }
    public static func * (lhs: Tensor, rhs: Tensor) -> Tensor { lhs.zipped(rhs, Elementwise.multiply) }
    public static func * (lhs: Tensor, rhs: Float) -> Tensor { lhs.mapped { Elementwise.scale($0, by: rhs, into: $1) } }
}
