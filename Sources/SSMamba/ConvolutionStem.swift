import Randomness
import Tensors

/// R1's stem: two 3×3 stride-2 convolutions (no bias), each followed by LayerNorm over channels
/// and GELU, taking images to a grid of 1/4 the side (MambaVision's PatchEmbed, LayerNorm in place
/// of BatchNorm, GELU in place of ReLU). Width: channels → dim/2 → dim.
public final class ConvolutionStem: ParameterOwner, KeepsActivations {
    let conv1: Convolution2D, conv2: Convolution2D
    let norm1: LayerNormalization, norm2: LayerNormalization
    private var activationInputs: [Tensor] = []
    private var imageShape: [Int] = []

    public init(_ name: String, channels: Int, dim: Int, using rng: inout RandomGenerator) {
        let middle = max(1, dim / 2)
        conv1 = Convolution2D(parameterName(name, "conv1"), inChannels: channels, outChannels: middle, stride: 2, bias: false, using: &rng)
        norm1 = LayerNormalization(parameterName(name, "norm1"), width: middle)
        conv2 = Convolution2D(parameterName(name, "conv2"), inChannels: middle, outChannels: dim, stride: 2, bias: false, using: &rng)
        norm2 = LayerNormalization(parameterName(name, "norm2"), width: dim)
    }

    public var parameters: [Parameter] { conv1.parameters + norm1.parameters + conv2.parameters + norm2.parameters }

    /// The grid side after the stem for an image side.
    public func outputSide(_ imageSide: Int) -> Int { conv2.outputSide(conv1.outputSide(imageSide)) }

    /// images (batch, channels, side, side) → tokens (batch, s·s, dim), s = `outputSide(side)`.
    /// Without `training` nothing is stored for a backward, so threads may run it at once.
    public func forward(_ images: Tensor, training: Bool) -> Tensor {
        let side = images.shape[2], keeping = training
        let first = norm1.forward(conv1.forward(Self.channelsLast(images), height: side, width: side, keeping: keeping), keeping: keeping)
        let half = conv1.outputSide(side)
        let second = norm2.forward(conv2.forward(first.mapped(Activation.geluErf), height: half, width: half, keeping: keeping), keeping: keeping)
        if keeping { (imageShape, activationInputs) = (images.shape, [first, second]) }
        return second.mapped(Activation.geluErf)
    }

    public func releaseActivations() {
        activationInputs = []
        let layers: [KeepsActivations] = [conv1, norm1, conv2, norm2]
        layers.forEach { $0.releaseActivations() }
    }

    /// ∂tokens → ∂images; accumulates the parameter gradients.
    public func backward(_ g: Tensor) -> Tensor {
        let gFirst = norm2.backward(activationInputs[1].zipped(g, Activation.geluErfBackward))
        let gImageTokens = conv1.backward(norm1.backward(activationInputs[0].zipped(conv2.backward(gFirst), Activation.geluErfBackward)))
        return Self.channelsFirst(gImageTokens, shape: imageShape)
    }

    /// (batch, channels, H, W) → (batch, H·W, channels).
    static func channelsLast(_ images: Tensor) -> Tensor {
        let (batch, channels, cells) = (images.shape[0], images.shape[1], images.shape[2] * images.shape[3])
        var out = Tensor(zeros: [batch, cells, channels])
        images.withUnsafeBufferPointer { x in out.withUnsafeMutableBufferPointer { y in
            for b in 0..<batch { for c in 0..<channels { for p in 0..<cells {
                y[(b * cells + p) * channels + c] = x[(b * channels + c) * cells + p]
            } } }
        } }
        return out
    }

    /// The inverse of `channelsLast`, back to `shape` (batch, channels, H, W).
    static func channelsFirst(_ tokens: Tensor, shape: [Int]) -> Tensor {
        let (batch, channels, cells) = (shape[0], shape[1], shape[2] * shape[3])
        var out = Tensor(zeros: shape)
        tokens.withUnsafeBufferPointer { x in out.withUnsafeMutableBufferPointer { y in
            for b in 0..<batch { for c in 0..<channels { for p in 0..<cells {
                y[(b * channels + c) * cells + p] = x[(b * cells + p) * channels + c]
            } } }
        } }
        return out
    }
}
