/// Sums and means over whole buffers or along one axis.
///
/// An axis reduction views the tensor as (outer, length, inner), with `length` the extent of the
/// reduced axis: out[o, i] = Σₖ x[o, k, i]. The backward of a sum broadcasts g back along the axis;
/// the backward of a mean broadcasts g/length.
public enum Reduction {
    /// Σ x[i], with four 16-lane accumulators (pairwise at the end), so the rounding error grows
    /// far more slowly than a sequential loop's.
    public static func sum(_ x: UnsafeBufferPointer<Float>) -> Float {
        SIMDLoops.sum(x) { $0 }
    }

    /// Σ x[i]·y[i]
    public static func dot(_ x: UnsafeBufferPointer<Float>, _ y: UnsafeBufferPointer<Float>) -> Float {
        SIMDLoops.dot(x, y)
    }

    /// out[o, i] = Σₖ x[o, k, i] (or the mean, dividing by `length`); `out` has outer·inner elements.
    public static func sum(_ x: UnsafeBufferPointer<Float>, outer: Int, length: Int, inner: Int,
                           into out: UnsafeMutableBufferPointer<Float>, mean: Bool = false) {
        precondition(x.count == outer * length * inner && out.count == outer * inner, "reduction shape mismatch")
        let factor: Float = mean ? 1 / Float(Swift.max(length, 1)) : 1
        for o in 0..<outer {
            if inner == 1 {
                let row = UnsafeBufferPointer(rebasing: x[(o * length)..<((o + 1) * length)])
                out[o] = sum(row) * factor
                continue
            }
            let target = UnsafeMutableBufferPointer(rebasing: out[(o * inner)..<((o + 1) * inner)])
            target.update(repeating: 0)
            for k in 0..<length {
                let start = (o * length + k) * inner
                Elementwise.accumulate(UnsafeBufferPointer(rebasing: x[start..<(start + inner)]), into: target)
            }
            if mean { Elementwise.scale(UnsafeBufferPointer(target), by: factor, into: target) }
        }
    }

    /// gx[o, k, i] = g[o, i] (times 1/length for a mean).
    public static func sumBackward(_ g: UnsafeBufferPointer<Float>, outer: Int, length: Int, inner: Int,
                                   into gx: UnsafeMutableBufferPointer<Float>, mean: Bool = false) {
        precondition(gx.count == outer * length * inner && g.count == outer * inner, "reduction shape mismatch")
        let factor: Float = mean ? 1 / Float(Swift.max(length, 1)) : 1
        for o in 0..<outer {
            let source = UnsafeBufferPointer(rebasing: g[(o * inner)..<((o + 1) * inner)])
            for k in 0..<length {
                let start = (o * length + k) * inner
                Elementwise.scale(source, by: factor, into: UnsafeMutableBufferPointer(rebasing: gx[start..<(start + inner)]))
            }
        }
    }

    /// (outer, length, inner) for reducing `shape` along `axis`.
    public static func split(_ shape: [Int], axis: Int) -> (outer: Int, length: Int, inner: Int) {
        precondition(axis >= 0 && axis < shape.count, "axis \(axis) out of range for shape \(shape)")
        return (Tensor.count(of: Array(shape[..<axis])), shape[axis], Tensor.count(of: Array(shape[(axis + 1)...])))
    }
}

extension Tensor {
    /// Sum of every element.
    public func sum() -> Float { withUnsafeBufferPointer(Reduction.sum) }

    /// Mean of every element (0 for an empty tensor).
    public func mean() -> Float { count == 0 ? 0 : sum() / Float(count) }

    /// Sum (or mean) along one axis; the axis is removed unless `keepingAxis`.
    public func sum(alongAxis axis: Int, keepingAxis: Bool = false, mean: Bool = false) -> Tensor {
        let (outer, length, inner) = Reduction.split(shape, axis: axis)
        var newShape = shape
        if keepingAxis { newShape[axis] = 1 } else { newShape.remove(at: axis) }
        var result = Tensor(zeros: newShape)
        withUnsafeBufferPointer { x in
            result.withUnsafeMutableBufferPointer {
                Reduction.sum(x, outer: outer, length: length, inner: inner, into: $0, mean: mean)
            }
        }
        return result
    }

    /// Mean along one axis.
    public func mean(alongAxis axis: Int, keepingAxis: Bool = false) -> Tensor {
        sum(alongAxis: axis, keepingAxis: keepingAxis, mean: true)
    }

    /// Sum (or mean) over several axes, outermost result first.
    public func sum(alongAxes axes: [Int], mean: Bool = false) -> Tensor {
        var result = self
        for axis in Set(axes).sorted(by: >) { result = result.sum(alongAxis: axis, mean: mean) }
        return result
    }
}
