import Foundation
import Randomness
import Tensors

/// Multi-head self-attention over each image's tokens (the "hybrid" blocks), timm's layout:
///
///     q, k, v = split(qkv(x))                 qkv: dim → 3·dim with bias, as (3, heads, head_dim)
///     P_h = softmax(Q_h K_hᵀ / √head_dim)     per image and head, over that image's tokens
///     out = proj(concat_h P_h V_h)            proj: dim → dim with bias
///
/// Backward per head: ∂P = ∂O·Vᵀ, ∂V = Pᵀ·∂O, ∂S = softmax′(P, ∂P)/√d, ∂Q = ∂S·K, ∂K = ∂Sᵀ·Q.
public final class SelfAttention: ParameterOwner, KeepsActivations {
    let qkv: Linear
    let projection: Linear
    let dim: Int, heads: Int
    private var packed = Tensor(zeros: [0])        // (B, L, 3·dim)
    private var probabilities = Tensor(zeros: [0]) // (B, heads, L, L)

    public init(_ name: String, dim: Int, heads: Int, using rng: inout RandomGenerator) {
        precondition(dim % heads == 0, "dim \(dim) is not divisible by \(heads) heads")
        (self.dim, self.heads) = (dim, heads)
        qkv = Linear(parameterName(name, "qkv"), inFeatures: dim, outFeatures: 3 * dim, using: &rng)
        projection = Linear(parameterName(name, "proj"), inFeatures: dim, outFeatures: dim, using: &rng)
    }

    public var parameters: [Parameter] { qkv.parameters + projection.parameters }

    var headDim: Int { dim / heads }
    var scale: Float { 1 / Float(headDim).squareRoot() }

    /// With `keeping` false nothing is stored for a backward, so threads may run it at once.
    public func forward(_ x: Tensor, keeping: Bool = true) -> Tensor {
        let (batch, count) = (x.shape[0], x.shape[1])
        let packed = qkv.forward(x, keeping: keeping)
        var probabilities = Tensor(zeros: [batch, heads, count, count])
        var attended = Tensor(zeros: [batch, count, dim])
        let (d, hd, stride) = (dim, headDim, 3 * dim)
        packed.withUnsafeBufferPointer { q in probabilities.withUnsafeMutableBufferPointer { p in attended.withUnsafeMutableBufferPointer { o in
            for b in 0..<batch { for h in 0..<heads {
                let base = q.baseAddress! + b * count * stride + h * hd
                let scores = p.baseAddress! + (b * heads + h) * count * count
                BLAS.gemm(transposeB: true, m: count, n: count, k: hd, alpha: scale, a: base, lda: stride,
                          b: base + d, ldb: stride, c: scores, ldc: count)
                let rows = UnsafeMutableBufferPointer(start: scores, count: count * count)
                Softmax.forward(UnsafeBufferPointer(rows), outer: count, length: count, inner: 1, into: rows)
                BLAS.gemm(m: count, n: hd, k: count, a: scores, lda: count, b: base + 2 * d, ldb: stride,
                          c: o.baseAddress! + b * count * d + h * hd, ldc: d)
            } }
        } } }
        if keeping { (self.packed, self.probabilities) = (packed, probabilities) }
        return projection.forward(attended, keeping: keeping)
    }

    public func releaseActivations() {
        packed = Tensor(zeros: [0])
        probabilities = Tensor(zeros: [0])
        qkv.releaseActivations()
        projection.releaseActivations()
    }

    public func backward(_ g: Tensor) -> Tensor {
        let (batch, count) = (g.shape[0], g.shape[1])
        let gAttended = projection.backward(g)
        var gPacked = Tensor(zeros: packed.shape)
        var gScores = [Float](repeating: 0, count: count * count)
        let (d, hd, stride) = (dim, headDim, 3 * dim)
        packed.withUnsafeBufferPointer { q in probabilities.withUnsafeBufferPointer { p in gAttended.withUnsafeBufferPointer { go in
            gPacked.withUnsafeMutableBufferPointer { gq in gScores.withUnsafeMutableBufferPointer { gs in
                for b in 0..<batch { for h in 0..<heads {
                    let base = q.baseAddress! + b * count * stride + h * hd
                    let gBase = gq.baseAddress! + b * count * stride + h * hd
                    let probs = p.baseAddress! + (b * heads + h) * count * count
                    let gOut = go.baseAddress! + b * count * d + h * hd
                    // ∂P = ∂O·Vᵀ ; ∂V = Pᵀ·∂O
                    BLAS.gemm(transposeB: true, m: count, n: count, k: hd, a: gOut, lda: d, b: base + 2 * d, ldb: stride,
                              c: gs.baseAddress!, ldc: count)
                    BLAS.gemm(transposeA: true, m: count, n: hd, k: count, a: probs, lda: count, b: gOut, ldb: d,
                              c: gBase + 2 * d, ldc: stride)
                    // ∂S (scaled by 1/√d, the factor of the forward's scores)
                    Softmax.backward(UnsafeBufferPointer(start: probs, count: count * count), UnsafeBufferPointer(gs),
                                     outer: count, length: count, inner: 1, into: gs)
                    // ∂Q = ∂S·K·scale ; ∂K = ∂Sᵀ·Q·scale
                    BLAS.gemm(m: count, n: hd, k: count, alpha: scale, a: gs.baseAddress!, lda: count, b: base + d, ldb: stride,
                              c: gBase, ldc: stride)
                    BLAS.gemm(transposeA: true, m: count, n: hd, k: count, alpha: scale, a: gs.baseAddress!, lda: count,
                              b: base, ldb: stride, c: gBase + d, ldc: stride)
                } }
            } }
        } } }
        return qkv.backward(gPacked)
    }
}
