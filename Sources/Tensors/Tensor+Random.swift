import Randomness

extension Tensor {
    /// A tensor of uniform values in [low, high).
    public static func uniform(_ shape: [Int], low: Float = 0, high: Float = 1, using rng: inout RandomGenerator) -> Tensor {
        var t = Tensor(zeros: shape)
        t.withUnsafeMutableBufferPointer { rng.fillUniform($0, low: low, high: high) }
        return t
    }

    /// A tensor of normal values.
    public static func normal(_ shape: [Int], mean: Float = 0, std: Float = 1, using rng: inout RandomGenerator) -> Tensor {
        var t = Tensor(zeros: shape)
        t.withUnsafeMutableBufferPointer { rng.fillNormal($0, mean: mean, std: std) }
        return t
    }
}
