import Randomness
import Tensors

/// One SSMamba block (pre-norm):
///
///     x ← LPR(x)                               (when enabled)
///     x ← x + DropPath(Mixer(LN₁(x)))          Mixer = DMS, or self-attention in hybrid blocks
///     x ← x + DropPath(MLP(LN₂(x)))            (when mlpRatio > 0)
public final class Block: ParameterOwner {
    enum Mixer {
        case directional(DirectionalMultiScale)
        case attention(SelfAttention)
    }

    let lpr: LocalPerceptionResidual?
    let norm1: LayerNormalization
    let mixer: Mixer
    let norm2: LayerNormalization?
    let mlp: MLP?
    var mixerDropPath: DropPath
    var mlpDropPath: DropPath

    /// A block of width `dim` (config.dim in the plain layout; a level's width in R1).
    init(_ name: String, config: ModelConfiguration, dim: Int, heads: Int, attention: Bool, dropPath: Float,
         using rng: inout RandomGenerator) throws {
        lpr = config.useLPR ? LocalPerceptionResidual(parameterName(name, "lpr"), channels: dim) : nil
        norm1 = LayerNormalization(parameterName(name, "norm1"), width: dim)
        if attention {
            mixer = .attention(SelfAttention(parameterName(name, "mixer"), dim: dim, heads: heads, using: &rng))
        } else {
            mixer = .directional(DirectionalMultiScale(
                parameterName(name, "mixer"), dim: dim, expand: config.expand, state: config.stateSize,
                directions: try config.scanDirections(), kernels: config.localKernels, merge: config.merge,
                padding: config.localPadding, localPerDirection: config.localPerDirection, memoryMode: config.scanMemory, using: &rng))
        }
        if config.mlpRatio > 0 {
            norm2 = LayerNormalization(parameterName(name, "norm2"), width: dim)
            mlp = MLP(parameterName(name, "mlp"), dim: dim, hidden: config.mlpRatio * dim, using: &rng)
        } else {
            norm2 = nil
            mlp = nil
        }
        mixerDropPath = DropPath(probability: dropPath)
        mlpDropPath = DropPath(probability: dropPath)
    }

    public var parameters: [Parameter] {
        var result = (lpr?.parameters ?? []) + norm1.parameters
        switch mixer {
        case .directional(let dms): result += dms.parameters
        case .attention(let attention): result += attention.parameters
        }
        return result + (norm2?.parameters ?? []) + (mlp?.parameters ?? [])
    }

    /// Without `training` nothing is stored for a backward and drop-path is the identity, so
    /// threads may run evaluation forwards of one block at once.
    func forward(_ input: Tensor, grid: TokenGrid, training: Bool, using rng: inout RandomGenerator) -> Tensor {
        let keeping = training
        var x = lpr?.forward(input, grid: grid, keeping: keeping) ?? input
        let normed = norm1.forward(x, keeping: keeping)
        let mixed: Tensor
        switch mixer {
        case .directional(let dms): mixed = dms.forward(normed, grid: grid, keeping: keeping)
        case .attention(let attention): mixed = attention.forward(normed, keeping: keeping)
        }
        x = x + (training ? mixerDropPath.forward(mixed, training: true, using: &rng) : mixed)
        if let norm2, let mlp {
            let branch = mlp.forward(norm2.forward(x, keeping: keeping), keeping: keeping)
            x = x + (training ? mlpDropPath.forward(branch, training: true, using: &rng) : branch)
        }
        return x
    }

    /// Drops what the forward kept for the backward (every evaluation-mode forward does).
    func releaseActivations() {
        let layers: [KeepsActivations?] = [lpr, norm1, norm2, mlp]
        layers.forEach { $0?.releaseActivations() }
        switch mixer {
        case .directional(let dms): dms.releaseActivations()
        case .attention(let attention): attention.releaseActivations()
        }
    }

    func backward(_ g: Tensor) -> Tensor {
        var gx = g
        if let norm2, let mlp {
            gx = gx + norm2.backward(mlp.backward(mlpDropPath.backward(gx)))
        }
        let gMixed = mixerDropPath.backward(gx)
        let gNormed: Tensor
        switch mixer {
        case .directional(let dms): gNormed = dms.backward(gMixed)
        case .attention(let attention): gNormed = attention.backward(gMixed)
        }
        gx = gx + norm1.backward(gNormed)
        return lpr?.backward(gx) ?? gx
    }
}
