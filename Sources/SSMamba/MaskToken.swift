import Randomness
import Tensors

/// SimMIM's stand-in for hidden patches at the encoder's input: one learned vector of the token
/// width that replaces the patch token of every hidden cell, so the encoder runs on the whole grid
/// (its scans, local convolutions and LPR see the neighbourhoods they see in fine-tuning) without
/// seeing the hidden pixels.
///
/// Forward: x'[b, c] = m if cell c of image b is hidden, else x[b, c].
/// Backward: ∂m = Σ over hidden cells of ∂x'[b, c]; ∂x[b, c] = 0 at hidden cells, ∂x'[b, c] elsewhere.
public final class MaskToken: ParameterOwner {
    public let token: Parameter

    /// Initialised N(0, 0.02²), like the decoder's mask token; not weight-decayed.
    public init(_ name: String, width: Int, using rng: inout RandomGenerator) {
        token = Parameter(name, Tensor.normal([width], using: &rng) * 0.02, decays: false)
    }

    public var parameters: [Parameter] { [token] }

    /// `tokens` (B, cells, width) with the rows of hidden cells (`hidden[b·cells + c]`) replaced.
    public func substitute(_ tokens: Tensor, hidden: [Bool]) -> Tensor {
        let width = token.value.count
        precondition(tokens.rank == 3 && tokens.shape[2] == width && tokens.shape[0] * tokens.shape[1] == hidden.count,
                     "mask token of width \(width) over \(hidden.count) cells got tokens \(tokens.shape)")
        var out = tokens
        out.withUnsafeMutableBufferPointer { o in token.value.withUnsafeBufferPointer { m in
            for row in hidden.indices where hidden[row] {
                (o.baseAddress! + row * width).update(from: m.baseAddress!, count: width)
            }
        } }
        return out
    }

    /// Accumulates ∂m from the hidden rows of `g` (B, cells, width) and returns `g` with those rows 0.
    public func backward(_ g: Tensor, hidden: [Bool]) -> Tensor {
        let width = token.value.count
        var out = g
        out.withUnsafeMutableBufferPointer { o in token.gradient.withUnsafeMutableBufferPointer { gm in
            for row in hidden.indices where hidden[row] {
                for j in 0..<width { gm[j] += o[row * width + j] }
                (o.baseAddress! + row * width).update(repeating: 0, count: width)
            }
        } }
        return out
    }
}
