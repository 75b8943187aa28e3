import Foundation
import Randomness
import Tensors

/// Gated attention-based multiple-instance learning (ABMIL, Ilse et al. 2018) over one bag of
/// tile embeddings X (N × D):
///
///     A = tanh(X·Vᵀ + b_V) ⊙ σ(X·Uᵀ + b_U)        (N × H)
///     s = A·wᵀ,  a = softmax(s)                      (N)       attention over the tiles
///     z = aᵀ·X                                     (D)       the slide embedding
///     y = W_c·z + b_c                              (K)       logits (K classes, or 1 risk for survival)
///
/// Backward: ∂z = W_cᵀ∂y; ∂a_i = ⟨∂z, x_i⟩; ∂s = a ⊙ (∂a − ⟨a, ∂a⟩); ∂A = ∂s·w;
/// ∂(XVᵀ) = ∂A ⊙ σ(·) ⊙ (1 − tanh²); ∂(XUᵀ) = ∂A ⊙ tanh(·) ⊙ σ(1 − σ); ∂X = a ∂zᵀ + the two.
public final class AttentionMIL: ParameterOwner {
    let v: Linear, u: Linear, w: Linear, classifier: Linear
    // Kept for the backward.
    private var x = Tensor(zeros: [0]), tanhPart = Tensor(zeros: [0]), gatePart = Tensor(zeros: [0])
    private var attention: [Float] = [], pooled = Tensor(zeros: [0])

    public init(_ name: String = "mil", dim: Int, hidden: Int, outputs: Int, using rng: inout RandomGenerator) {
        v = Linear(parameterName(name, "attention_v"), inFeatures: dim, outFeatures: hidden, using: &rng)
        u = Linear(parameterName(name, "attention_u"), inFeatures: dim, outFeatures: hidden, using: &rng)
        w = Linear(parameterName(name, "attention_w"), inFeatures: hidden, outFeatures: 1, bias: false, using: &rng)  // a bias would not change the softmax
        classifier = Linear(parameterName(name, "classifier"), inFeatures: dim, outFeatures: outputs, using: &rng)
    }

    public var parameters: [Parameter] { v.parameters + u.parameters + w.parameters + classifier.parameters }

    /// The attention weights of the last forward (one per tile; they sum to 1).
    public var lastAttention: [Float] { attention }

    /// bag (N, D) → logits (1, K).
    public func forward(_ bag: Tensor) -> Tensor {
        x = bag
        let n = bag.shape[0]
        tanhPart = v.forward(bag).mapped { src, dst in for i in src.indices { dst[i] = Foundation.tanh(src[i]) } }
        gatePart = u.forward(bag)
        gatePart.withUnsafeMutableBufferPointer { g in Activation.sigmoid(UnsafeBufferPointer(g), into: g) }
        let gated = tanhPart * gatePart
        let scores = w.forward(gated)  // (N, 1)
        let top = scores.scalars.max() ?? 0
        let e = scores.scalars.map { Foundation.exp($0 - top) }
        let total = e.reduce(0, +)
        attention = e.map { $0 / total }
        let d = bag.shape[1]
        var z = Tensor(zeros: [1, d])
        for i in 0..<n { for j in 0..<d { z.scalars[j] += attention[i] * bag.scalars[i * d + j] } }
        pooled = z
        return classifier.forward(z)
    }

    /// ∂L/∂logits (1, K) → accumulates parameter gradients; returns ∂L/∂bag.
    @discardableResult
    public func backward(_ g: Tensor) -> Tensor {
        let (n, d) = (x.shape[0], x.shape[1])
        let gz = classifier.backward(g)  // (1, D)
        var gx = Tensor(zeros: x.shape)
        var ga = [Float](repeating: 0, count: n)
        for i in 0..<n {
            var dot: Float = 0
            for j in 0..<d {
                dot += gz.scalars[j] * x.scalars[i * d + j]
                gx.scalars[i * d + j] += attention[i] * gz.scalars[j]
            }
            ga[i] = dot
        }
        let weighted = zip(attention, ga).reduce(0) { $0 + $1.0 * $1.1 }
        let gs = Tensor(shape: [n, 1], scalars: (0..<n).map { attention[$0] * (ga[$0] - weighted) })
        let gGated = w.backward(gs)  // (N, H)
        let gTanhInput = gGated * gatePart * tanhPart.mapped { src, dst in for i in src.indices { dst[i] = 1 - src[i] * src[i] } }
        let gGateInput = gGated * tanhPart * gatePart.mapped { src, dst in for i in src.indices { dst[i] = src[i] * (1 - src[i]) } }
        return gx + v.backward(gTanhInput) + u.backward(gGateInput)
    }
}

/// The Cox proportional-hazards loss (negative log partial likelihood, Breslow ties) of risk
/// scores r: L = −(1/E) Σ_{i: eventᵢ} (rᵢ − log Σ_{j: tⱼ ≥ tᵢ} exp rⱼ), with E the number of events.
/// Gradient: ∂L/∂r_k = −(1/E) (event_k − Σ_{i: eventᵢ, t_k ≥ tᵢ} exp(r_k) / Σ_{j: tⱼ ≥ tᵢ} exp rⱼ).
public enum CoxLoss {
    public static func loss(risks: [Double], times: [Double], events: [Bool]) -> (loss: Double, gradient: [Double])? {
        let eventCount = events.filter { $0 }.count
        guard eventCount > 0 else { return nil }
        let top = risks.max() ?? 0
        let e = risks.map { Foundation.exp($0 - top) }
        var total = 0.0
        var gradient = [Double](repeating: 0, count: risks.count)
        for i in risks.indices where events[i] {
            let atRisk = risks.indices.filter { times[$0] >= times[i] }
            let sum = atRisk.reduce(0.0) { $0 + e[$1] }
            total += risks[i] - (Foundation.log(sum) + top)
            gradient[i] -= 1
            for j in atRisk { gradient[j] += e[j] / sum }
        }
        let scale = 1 / Double(eventCount)
        return (-total * scale, gradient.map { $0 * scale })
    }
}
