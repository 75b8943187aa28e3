import Randomness
import Tensors

/// Parameter initialisations (timm / mamba_ssm conventions).
enum Initialization {
    /// Truncated normal, std 0.02, cut at ±2 std (timm's `trunc_normal_(std=.02)` for linear layers).
    static func truncatedNormal(_ shape: [Int], std: Float = 0.02, using rng: inout RandomGenerator) -> Tensor {
        var t = Tensor(zeros: shape)
        t.withUnsafeMutableBufferPointer { out in
            for i in out.indices { out[i] = rng.truncatedNormal(mean: 0, std: std, low: -2 * std, high: 2 * std) }
        }
        return t
    }

    /// U(−bound, bound).
    static func uniform(_ shape: [Int], bound: Float, using rng: inout RandomGenerator) -> Tensor {
        Tensor.uniform(shape, low: -bound, high: bound, using: &rng)
    }
}
