import Randomness
import Tensors

/// fc2(GELU(fc1(x))) with PyTorch's default (erf) GELU; hidden width = ratio·dim.
public final class MLP: ParameterOwner, KeepsActivations {
    let fc1: Linear, fc2: Linear
    private var hidden = Tensor(zeros: [0])

    public init(_ name: String, dim: Int, hidden: Int, using rng: inout RandomGenerator) {
        fc1 = Linear(parameterName(name, "fc1"), inFeatures: dim, outFeatures: hidden, using: &rng)
        fc2 = Linear(parameterName(name, "fc2"), inFeatures: hidden, outFeatures: dim, using: &rng)
    }

    public var parameters: [Parameter] { fc1.parameters + fc2.parameters }

    /// With `keeping` false nothing is stored for a backward, so threads may run it at once.
    public func forward(_ x: Tensor, keeping: Bool = true) -> Tensor {
        let hidden = fc1.forward(x, keeping: keeping)
        if keeping { self.hidden = hidden }
        return fc2.forward(hidden.mapped(Activation.geluErf), keeping: keeping)
    }

    public func releaseActivations() {
        hidden = Tensor(zeros: [0])
        fc1.releaseActivations()
        fc2.releaseActivations()
    }

    public func backward(_ g: Tensor) -> Tensor {
        let gActivated = fc2.backward(g)
        return fc1.backward(hidden.zipped(gActivated, Activation.geluErfBackward))
    }
}
