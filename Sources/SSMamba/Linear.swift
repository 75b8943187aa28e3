import Randomness
import Tensors

/// y = x·Wᵀ + b over the rows of x (rows × inFeatures → rows × outFeatures).
///
/// W has PyTorch's layout (out, in). Backward: ∂x = g·W, ∂W += gᵀ·x, ∂b += Σ_rows g.
public final class Linear: ParameterOwner, KeepsActivations {
    public let weight: Parameter
    public let bias: Parameter?
    public let inFeatures: Int, outFeatures: Int
    private var input = Tensor(zeros: [0])

    public init(_ name: String, inFeatures: Int, outFeatures: Int, bias: Bool = true, using rng: inout RandomGenerator) {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        weight = Parameter(parameterName(name, "weight"), Initialization.truncatedNormal([outFeatures, inFeatures], using: &rng), decays: true)
        self.bias = bias ? Parameter(parameterName(name, "bias"), Tensor(zeros: [outFeatures]), decays: false) : nil
    }

    public var parameters: [Parameter] { [weight] + (bias.map { [$0] } ?? []) }

    /// x: (…, inFeatures) → (…, outFeatures). Keeps x for the backward; with `keeping` false nothing is stored for a backward, so threads may run it at once.
    public func forward(_ x: Tensor, keeping: Bool = true) -> Tensor {
        if keeping { input = x }
        return Linear.apply(x, weight: weight.value, bias: bias?.value)
    }

    /// The product without keeping anything (inference, or a caller that keeps x itself).
    public static func apply(_ x: Tensor, weight: Tensor, bias: Tensor?) -> Tensor {
        // The weight may carry a conv layout (out, c, kh, kw): only its first extent is special.
        let outFeatures = weight.shape[0], inFeatures = weight.count / max(outFeatures, 1)
        precondition(x.shape.last == inFeatures, "linear expects last extent \(inFeatures), got \(x.shape)")
        let rows = x.count / max(inFeatures, 1)
        // Every element is written: the bias rows (then β = 1), or the product alone (β = 0).
        var y = Tensor(uninitialized: Array(x.shape.dropLast()) + [outFeatures])
        x.withUnsafeBufferPointer { xs in weight.withUnsafeBufferPointer { ws in y.withUnsafeMutableBufferPointer { ys in
            if let bias {
                bias.withUnsafeBufferPointer { bs in
                    for r in 0..<rows { _ = UnsafeMutableBufferPointer(rebasing: ys[(r * outFeatures)..<((r + 1) * outFeatures)]).update(fromContentsOf: bs) }
                }
            }
            guard let px = xs.baseAddress, let pw = ws.baseAddress, let py = ys.baseAddress else {
                if bias == nil { ys.update(repeating: 0) }  // no inputs (k = 0): the product is zero
                return
            }
            BLAS.gemm(transposeB: true, m: rows, n: outFeatures, k: inFeatures, a: px, lda: inFeatures,
                      b: pw, ldb: inFeatures, beta: bias == nil ? 0 : 1, c: py, ldc: outFeatures)
        } } }
        return y
    }

    public func releaseActivations() { input = Tensor(zeros: [0]) }

    /// g: (…, outFeatures) → ∂x (…, inFeatures); accumulates ∂W and ∂b.
    public func backward(_ g: Tensor) -> Tensor {
        backward(g, input: input)
    }

    /// The backward for a forward whose input the caller kept (`Linear.apply` forwards).
    public func backward(_ g: Tensor, input: Tensor) -> Tensor {
        let rows = g.count / max(outFeatures, 1)
        precondition(input.count == rows * inFeatures, "linear backward without a matching forward")
        // The product writes every element of ∂x (β = 0); without rows (or outputs) it is zero.
        var gx = rows > 0 ? Tensor(uninitialized: input.shape) : Tensor(zeros: input.shape)
        g.withUnsafeBufferPointer { gs in
            guard let pg = gs.baseAddress, rows > 0 else { return }
            weight.value.withUnsafeBufferPointer { ws in gx.withUnsafeMutableBufferPointer { gxs in
                BLAS.gemm(m: rows, n: inFeatures, k: outFeatures, a: pg, lda: outFeatures,
                          b: ws.baseAddress!, ldb: inFeatures, c: gxs.baseAddress!, ldc: inFeatures)
            } }
            input.withUnsafeBufferPointer { xs in weight.gradient.withUnsafeMutableBufferPointer { gws in
                BLAS.gemm(transposeA: true, m: outFeatures, n: inFeatures, k: rows, a: pg, lda: outFeatures,
                          b: xs.baseAddress!, ldb: inFeatures, beta: 1, c: gws.baseAddress!, ldc: inFeatures)
            } }
            if let bias {
                bias.gradient.withUnsafeMutableBufferPointer { gbs in
                    for r in 0..<rows {
                        Elementwise.accumulate(UnsafeBufferPointer(rebasing: gs[(r * outFeatures)..<((r + 1) * outFeatures)]), into: gbs)
                    }
                }
            }
        }
        return gx
    }
}
