import Foundation

/// A seeded, reproducible random number generator (xoshiro256**, seeded through SplitMix64).
///
/// The same seed always gives the same sequence, on every machine. `stream(_:)` derives an
/// independent generator from the *seed* (not from the current state), so worker `i` of a run
/// gets the same numbers however much the parent has drawn and however many workers there are.
public struct RandomGenerator: RandomNumberGenerator, Sendable {
    public let seed: UInt64
    private var state: (UInt64, UInt64, UInt64, UInt64)
    /// The place of this process's first sample in the whole batch: data-parallel training sets it
    /// (0 otherwise); `perSample(_:)` uses it. Not part of the saved state.
    public var sampleOffset = 0

    /// The full state, for checkpoints: `RandomGenerator(state:)` continues the exact sequence.
    public var savedState: [UInt64] { [seed, state.0, state.1, state.2, state.3] }

    public init?(state saved: [UInt64]) {
        guard saved.count == 5, saved[1...].contains(where: { $0 != 0 }) else { return nil }
        seed = saved[0]
        state = (saved[1], saved[2], saved[3], saved[4])
    }

    public init(seed: UInt64) {
        self.seed = seed
        var mixer = seed
        state = (RandomGenerator.splitMix(&mixer), RandomGenerator.splitMix(&mixer),
                 RandomGenerator.splitMix(&mixer), RandomGenerator.splitMix(&mixer))
    }

    /// One generator per sample of a batch of `count`: sample i draws from
    /// `RandomGenerator(seed: site).stream(sampleOffset + i)`, `site` being one draw of this
    /// generator. Every process of a data-parallel run makes the same draws of sites, so a sample's
    /// random choices (its drop-path, dropout, mask) do not depend on how the batch was shared out.
    public mutating func perSample(_ count: Int) -> [RandomGenerator] {
        let site = RandomGenerator(seed: next())
        return (0..<count).map { site.stream(UInt64(sampleOffset + $0)) }
    }

    /// The generator of sub-stream `index` (e.g. a worker or an epoch), a pure function of
    /// (seed, index).
    public func stream(_ index: UInt64) -> RandomGenerator {
        var mixer = seed ^ 0x5851_F42D_4C95_7F2D
        _ = RandomGenerator.splitMix(&mixer)
        mixer &+= index &* 0xD1B5_4A32_D192_ED03
        return RandomGenerator(seed: RandomGenerator.splitMix(&mixer))
    }

    /// SplitMix64: advances `x` and returns a well-mixed 64-bit value.
    static func splitMix(_ x: inout UInt64) -> UInt64 {
        x &+= 0x9E37_79B9_7F4A_7C15
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    public mutating func next() -> UInt64 {
        let result = rotate(state.1 &* 5, 7) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = rotate(state.3, 45)
        return result
    }

    private func rotate(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// Uniform in [0, 1), 24 random bits (every value a multiple of 2⁻²⁴).
    public mutating func uniform() -> Float {
        Float(next() >> 40) * 0x1p-24
    }

    /// Uniform in [low, high).
    public mutating func uniform(_ low: Float, _ high: Float) -> Float {
        low + (high - low) * uniform()
    }

    /// Uniform in [0, 1), 53 random bits.
    public mutating func uniformDouble() -> Double {
        Double(next() >> 11) * 0x1p-53
    }

    /// Normal(mean, std) by the Box–Muller transform (one of the pair is used, for simplicity
    /// of the state).
    public mutating func normal(mean: Float = 0, std: Float = 1) -> Float {
        let u1 = 1 - uniformDouble()  // (0, 1], so the log is finite
        let u2 = uniformDouble()
        let z = (-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2)
        return mean + std * Float(z)
    }

    /// Normal(mean, std) conditioned on [low, high] (PyTorch's `trunc_normal_` semantics: the
    /// bounds are absolute values), by rejection; the bounds must contain a reasonable mass.
    public mutating func truncatedNormal(mean: Float = 0, std: Float = 1, low: Float = -2, high: Float = 2) -> Float {
        precondition(low < high, "empty truncation interval [\(low), \(high)]")
        for _ in 0..<10_000 {
            let value = normal(mean: mean, std: std)
            if value >= low && value <= high { return value }
        }
        // The interval holds almost no mass: fall back to its nearest point to the mean.
        return min(max(mean, low), high)
    }

    /// Uniform integer in 0..<bound, unbiased (Lemire's multiply-and-reject).
    public mutating func integer(below bound: Int) -> Int {
        precondition(bound > 0, "bound must be positive")
        let limit = UInt64(bound)
        var product = next().multipliedFullWidth(by: limit)
        if product.low < limit {
            let threshold = (0 &- limit) % limit
            while product.low < threshold { product = next().multipliedFullWidth(by: limit) }
        }
        return Int(product.high)
    }

    /// A uniformly random permutation of 0..<count (Fisher–Yates).
    public mutating func permutation(_ count: Int) -> [Int] {
        var result = Array(0..<count)
        var i = count - 1
        while i > 0 {
            result.swapAt(i, integer(below: i + 1))
            i -= 1
        }
        return result
    }

    /// Fills a buffer with uniform values in [low, high).
    public mutating func fillUniform(_ out: UnsafeMutableBufferPointer<Float>, low: Float = 0, high: Float = 1) {
        for i in out.indices { out[i] = uniform(low, high) }
    }

    /// Fills a buffer with normal values.
    public mutating func fillNormal(_ out: UnsafeMutableBufferPointer<Float>, mean: Float = 0, std: Float = 1) {
        for i in out.indices { out[i] = normal(mean: mean, std: std) }
    }
}
