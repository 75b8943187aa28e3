import Tensors

/// LayerNorm over the last axis with affine γ, β (PyTorch `nn.LayerNorm`, ε = 1e-5 by default).
public final class LayerNormalization: ParameterOwner, KeepsActivations {
    public let weight: Parameter
    public let bias: Parameter
    public let width: Int
    public let epsilon: Float
    private var input = Tensor(zeros: [0])
    private var mean: [Float] = [], inverseStd: [Float] = []

    public init(_ name: String, width: Int, epsilon: Float = 1e-5) {
        self.width = width
        self.epsilon = epsilon
        weight = Parameter(parameterName(name, "weight"), Tensor(repeating: 1, shape: [width]), decays: false)
        bias = Parameter(parameterName(name, "bias"), Tensor(zeros: [width]), decays: false)
    }

    public var parameters: [Parameter] { [weight, bias] }

    /// Keeps x and each row's statistics for the backward; with `keeping` false nothing is stored for a backward, so threads may run it at once.
    public func forward(_ x: Tensor, keeping: Bool = true) -> Tensor {
        precondition(x.shape.last == width, "layer norm expects last extent \(width), got \(x.shape)")
        let rows = x.count / max(width, 1)
        var mean = [Float](repeating: 0, count: rows)
        var inverseStd = [Float](repeating: 0, count: rows)
        var y = Tensor(uninitialized: x.shape)  // the kernels write every element
        x.withUnsafeBufferPointer { xs in weight.value.withUnsafeBufferPointer { gs in bias.value.withUnsafeBufferPointer { bs in
            y.withUnsafeMutableBufferPointer { ys in mean.withUnsafeMutableBufferPointer { ms in inverseStd.withUnsafeMutableBufferPointer { rs in
                LayerNorm.forward(xs, gamma: gs, beta: bs, rows: rows, width: width, epsilon: epsilon, into: ys, mean: ms, inverseStd: rs)
            } } }
        } } }
        if keeping { (input, self.mean, self.inverseStd) = (x, mean, inverseStd) }
        return y
    }

    public func releaseActivations() {
        input = Tensor(zeros: [0])
        mean = []
        inverseStd = []
    }

    public func backward(_ g: Tensor) -> Tensor {
        let rows = mean.count
        precondition(g.count == rows * width, "layer norm backward without a matching forward")
        var gx = Tensor(uninitialized: input.shape)
        input.withUnsafeBufferPointer { xs in weight.value.withUnsafeBufferPointer { gs in
            mean.withUnsafeBufferPointer { ms in inverseStd.withUnsafeBufferPointer { rs in g.withUnsafeBufferPointer { gos in
                gx.withUnsafeMutableBufferPointer { gxs in weight.gradient.withUnsafeMutableBufferPointer { ggs in
                    bias.gradient.withUnsafeMutableBufferPointer { gbs in
                        LayerNorm.backward(xs, gamma: gs, mean: ms, inverseStd: rs, gradOutput: gos, rows: rows, width: width,
                                           gradInput: gxs, gradGamma: ggs, gradBeta: gbs)
                    }
                } }
            } } }
        } }
        return gx
    }
}
