import Tensors

/// A trainable tensor, its gradient, and the name it has in a checkpoint.
///
/// Names are PyTorch-style dotted paths (`blocks.0.mixer.in_proj.weight`): they are the interface
/// between this engine's checkpoints and PyTorch's `state_dict`. Gradients accumulate (`+=`) in
/// every backward until `zeroGradient()`; that is what makes gradient accumulation work.
public final class Parameter {
    public let name: String
    public var value: Tensor
    public var gradient: Tensor
    /// Whether AdamW applies weight decay (not to biases, norms, A_log, D).
    public let decays: Bool

    public init(_ name: String, _ value: Tensor, decays: Bool) {
        self.name = name
        self.value = value
        self.gradient = Tensor(zeros: value.shape)
        self.decays = decays
    }

    public func zeroGradient() {
        gradient.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
    }
}

/// Anything that owns parameters, directly or through sub-layers.
public protocol ParameterOwner: AnyObject {
    var parameters: [Parameter] { get }
}

extension ParameterOwner {
    public func zeroGradients() { parameters.forEach { $0.zeroGradient() } }
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.value.count } }
}

/// A layer that keeps activations from its forward for its backward. `releaseActivations()`
/// drops them: evaluation-mode forwards call it so inference holds one block's activations at a
/// time, not the whole network's.
public protocol KeepsActivations: AnyObject {
    func releaseActivations()
}

/// Joins a path prefix and a name the way PyTorch's `named_parameters` does.
func parameterName(_ prefix: String, _ name: String) -> String {
    prefix.isEmpty ? name : "\(prefix).\(name)"
}
