import Randomness
import Tensors

/// Inverted dropout: in training each element is zeroed with probability p and the rest scaled by
/// 1/(1 − p); identity in evaluation. The backward applies the same mask.
public struct Dropout {
    public let probability: Float
    private var mask: Tensor?

    public init(probability: Float) {
        precondition(probability >= 0 && probability < 1, "dropout probability must be in [0, 1)")
        self.probability = probability
    }

    public mutating func forward(_ x: Tensor, training: Bool, using rng: inout RandomGenerator) -> Tensor {
        guard training && probability > 0 else { mask = nil; return x }
        var m = Tensor(zeros: x.shape)
        let keep = 1 / (1 - probability)
        // Each sample's row from its own generator (the same whichever process holds the sample).
        let samples = x.shape.first ?? 1, per = m.count / max(samples, 1)
        var generators = rng.perSample(samples)
        for i in 0..<m.count { m.scalars[i] = generators[i / max(per, 1)].uniform() < probability ? 0 : keep }
        mask = m
        return x * m
    }

    public func backward(_ g: Tensor) -> Tensor { mask.map { g * $0 } ?? g }
}

/// Drop-path (stochastic depth) on a residual branch: in training the whole branch of a sample is
/// dropped with probability p, kept samples scaled by 1/(1 − p). x is (batch, …).
public struct DropPath {
    public let probability: Float
    private var keep: [Float]?

    public init(probability: Float) {
        precondition(probability >= 0 && probability < 1, "drop-path probability must be in [0, 1)")
        self.probability = probability
    }

    public mutating func forward(_ x: Tensor, training: Bool, using rng: inout RandomGenerator) -> Tensor {
        guard training && probability > 0 else { keep = nil; return x }
        let scale = 1 / (1 - probability)
        var generators = rng.perSample(x.shape[0])  // one per sample, as Dropout
        let factors = generators.indices.map { generators[$0].uniform() < probability ? Float(0) : scale }
        keep = factors
        return DropPath.scaleSamples(x, factors)
    }

    public func backward(_ g: Tensor) -> Tensor { keep.map { DropPath.scaleSamples(g, $0) } ?? g }

    static func scaleSamples(_ x: Tensor, _ factors: [Float]) -> Tensor {
        var y = x
        let per = x.count / max(factors.count, 1)
        y.withUnsafeMutableBufferPointer { ys in
            for (b, f) in factors.enumerated() {
                let slice = UnsafeMutableBufferPointer(rebasing: ys[(b * per)..<((b + 1) * per)])
                Elementwise.scale(UnsafeBufferPointer(slice), by: f, into: slice)
            }
        }
        return y
    }
}
