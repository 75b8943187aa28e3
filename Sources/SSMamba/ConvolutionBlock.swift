import Randomness
import Tensors

/// The convolutional block of R1's first levels (MambaVision's ConvBlock, with LayerNorm over
/// channels in place of BatchNorm: batch statistics are unreliable at the small batches a CPU
/// trains with):
///
///     x ← x + DropPath(LN₂(conv₂(GELU(LN₁(conv₁(x))))))      convs 3×3, stride 1, with bias
public final class ConvolutionBlock: ParameterOwner, KeepsActivations {
    let conv1: Convolution2D, conv2: Convolution2D
    let norm1: LayerNormalization, norm2: LayerNormalization
    var dropPath: DropPath
    private var activationInput = Tensor(zeros: [0])

    public init(_ name: String, dim: Int, dropPath rate: Float, using rng: inout RandomGenerator) {
        conv1 = Convolution2D(parameterName(name, "conv1"), inChannels: dim, outChannels: dim, using: &rng)
        norm1 = LayerNormalization(parameterName(name, "norm1"), width: dim)
        conv2 = Convolution2D(parameterName(name, "conv2"), inChannels: dim, outChannels: dim, using: &rng)
        norm2 = LayerNormalization(parameterName(name, "norm2"), width: dim)
        dropPath = DropPath(probability: rate)
    }

    public var parameters: [Parameter] { conv1.parameters + norm1.parameters + conv2.parameters + norm2.parameters }

    /// x: (batch, side·side, dim) → the same shape.
    /// Without `training` nothing is stored for a backward (drop-path is the identity), so threads
    /// may run it at once.
    public func forward(_ x: Tensor, side: Int, training: Bool, using rng: inout RandomGenerator) -> Tensor {
        let keeping = training
        let activationInput = norm1.forward(conv1.forward(x, height: side, width: side, keeping: keeping), keeping: keeping)
        let branch = norm2.forward(conv2.forward(activationInput.mapped(Activation.geluErf), height: side, width: side, keeping: keeping), keeping: keeping)
        guard training else { return x + branch }
        self.activationInput = activationInput
        return x + dropPath.forward(branch, training: training, using: &rng)
    }

    public func releaseActivations() {
        activationInput = Tensor(zeros: [0])
        let layers: [KeepsActivations] = [conv1, norm1, conv2, norm2]
        layers.forEach { $0.releaseActivations() }
    }

    public func backward(_ g: Tensor) -> Tensor {
        let gActivated = conv2.backward(norm2.backward(dropPath.backward(g)))
        return g + conv1.backward(norm1.backward(activationInput.zipped(gActivated, Activation.geluErfBackward)))
    }
}
