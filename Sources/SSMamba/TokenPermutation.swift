import Tensors

/// Reorders the token rows of a (batch, count, width) tensor: `gather` builds the sequence a scan
/// direction visits, `scatter` puts per-step rows back in raster order (its exact inverse, and
/// the gather's backward).
enum TokenPermutation {
    /// out[b, s, :] = x[b, order[b·count + s], :]
    static func gather(_ x: Tensor, order: [Int]) -> Tensor {
        let (batch, count, width) = (x.shape[0], x.shape[1], x.shape[2])
        var out = Tensor(zeros: x.shape)
        x.withUnsafeBufferPointer { xs in out.withUnsafeMutableBufferPointer { os in
            for b in 0..<batch { for s in 0..<count {
                let source = (b * count + order[b * count + s]) * width, target = (b * count + s) * width
                UnsafeMutableBufferPointer(rebasing: os[target..<(target + width)])
                    .update(fromContentsOf: UnsafeBufferPointer(rebasing: xs[source..<(source + width)]))
            } }
        } }
        return out
    }

    /// out[b, order[b·count + s], :] += scale · y[b, s, :]
    static func scatterAdd(_ y: Tensor, order: [Int], scale: Float, into out: inout Tensor) {
        let (batch, count, width) = (y.shape[0], y.shape[1], y.shape[2])
        y.withUnsafeBufferPointer { ys in out.withUnsafeMutableBufferPointer { os in
            for b in 0..<batch { for s in 0..<count {
                let source = (b * count + s) * width, target = (b * count + order[b * count + s]) * width
                Elementwise.accumulate(UnsafeBufferPointer(rebasing: ys[source..<(source + width)]), scaledBy: scale,
                                       into: UnsafeMutableBufferPointer(rebasing: os[target..<(target + width)]))
            } }
        } }
    }
}
