/// Layer normalisation over the last axis of a (rows, width) view.
///
/// Forward: μ = mean(x), σ⁻¹ = 1/√(var(x) + ε) (biased variance, as PyTorch), x̂ = (x − μ)σ⁻¹,
/// y = γ ⊙ x̂ + β. The forward returns μ and σ⁻¹ per row for the backward.
///
/// Backward, with d = g ⊙ γ: ∂L/∂x = σ⁻¹·(d − mean(d) − x̂·mean(d ⊙ x̂)),
/// ∂L/∂γ += Σ_rows g ⊙ x̂, ∂L/∂β += Σ_rows g (parameter gradients accumulate).
public enum LayerNorm {
    public static func forward(_ x: UnsafeBufferPointer<Float>, gamma: UnsafeBufferPointer<Float>,
                               beta: UnsafeBufferPointer<Float>, rows: Int, width: Int, epsilon: Float = 1e-5,
                               into y: UnsafeMutableBufferPointer<Float>,
                               mean: UnsafeMutableBufferPointer<Float>, inverseStd: UnsafeMutableBufferPointer<Float>) {
        precondition(x.count == rows * width && y.count == x.count && gamma.count == width && beta.count == width
                     && mean.count == rows && inverseStd.count == rows, "layer norm shape mismatch")
        guard width > 0 else { return }
        let n = Float(width)
        for r in 0..<rows {
            let range = (r * width)..<((r + 1) * width)
            let row = UnsafeBufferPointer(rebasing: x[range])
            let mu = Reduction.sum(row) / n
            let variance = SIMDLoops.sum(row) { ($0 - mu) * ($0 - mu) } / n
            let rstd = 1 / (variance + epsilon).squareRoot()
            mean[r] = mu
            inverseStd[r] = rstd
            let out = UnsafeMutableBufferPointer(rebasing: y[range])
            SIMDLoops.map(row, gamma, out) { ($0 - mu) * rstd * $1 }
            Elementwise.add(UnsafeBufferPointer(out), beta, into: out)
        }
    }

    public static func backward(_ x: UnsafeBufferPointer<Float>, gamma: UnsafeBufferPointer<Float>,
                                mean: UnsafeBufferPointer<Float>, inverseStd: UnsafeBufferPointer<Float>,
                                gradOutput g: UnsafeBufferPointer<Float>, rows: Int, width: Int,
                                gradInput gx: UnsafeMutableBufferPointer<Float>,
                                gradGamma: UnsafeMutableBufferPointer<Float>, gradBeta: UnsafeMutableBufferPointer<Float>) {
        precondition(x.count == rows * width && g.count == x.count && gx.count == x.count && gamma.count == width
                     && gradGamma.count == width && gradBeta.count == width, "layer norm shape mismatch")
        guard width > 0 else { return }
        let n = Float(width)
        for r in 0..<rows {
            let range = (r * width)..<((r + 1) * width)
            let mu = mean[r], rstd = inverseStd[r]
            var sumD: Float = 0, sumDXhat: Float = 0
            for i in range {
                let xhat = (x[i] - mu) * rstd
                let d = g[i] * gamma[i - range.lowerBound]
                sumD += d
                sumDXhat += d * xhat
                gradGamma[i - range.lowerBound] += g[i] * xhat
                gradBeta[i - range.lowerBound] += g[i]
            }
            let meanD = sumD / n, meanDXhat = sumDXhat / n
            for i in range {
                let xhat = (x[i] - mu) * rstd
                let d = g[i] * gamma[i - range.lowerBound]
                gx[i] = rstd * (d - meanD - xhat * meanDXhat)
            }
        }
    }
}
