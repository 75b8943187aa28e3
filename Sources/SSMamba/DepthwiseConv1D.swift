import Foundation
import Randomness
import Tensors

/// Depthwise 1-D convolution along the token sequence of (batch, length, channels), PyTorch's
/// `Conv1d(C, C, k, groups=C)` with weight (C, 1, k):
///
///     y[b, t, c] = bias[c] + Σ_j w[c, j] · x[b, t − left + j, c]     (x outside 0..<L is 0)
///
/// "same" padding has left = (k − 1)/2 (k odd; the DMS local path, non-causal); causal has
/// left = k − 1 (Mamba/Vim's form). Backward: ∂x[t − left + j] += w[j]·g[t], ∂w[j] += g[t]·x[t − left + j].
public final class DepthwiseConv1D: ParameterOwner, KeepsActivations {
    public enum Padding: String, Sendable, Codable { case same, causal }

    public let weight: Parameter
    public let bias: Parameter
    public let channels: Int, kernel: Int
    public let padding: Padding
    private var input = Tensor(zeros: [0])

    public init(_ name: String, channels: Int, kernel: Int, padding: Padding = .same, using rng: inout RandomGenerator) {
        precondition(padding == .causal || kernel % 2 == 1, "'same' padding needs an odd kernel, got \(kernel)")
        (self.channels, self.kernel, self.padding) = (channels, kernel, padding)
        // PyTorch's default for a depthwise conv: U(±1/√fan_in), fan_in = k.
        let bound = 1 / Float(kernel).squareRoot()
        weight = Parameter(parameterName(name, "weight"), Initialization.uniform([channels, 1, kernel], bound: bound, using: &rng), decays: true)
        bias = Parameter(parameterName(name, "bias"), Initialization.uniform([channels], bound: bound, using: &rng), decays: false)
    }

    public var parameters: [Parameter] { [weight, bias] }

    var left: Int { padding == .same ? (kernel - 1) / 2 : kernel - 1 }

    /// The weight as (k, C), so each tap is a contiguous row across channels.
    private func tapRows(_ w: Tensor) -> [Float] {
        var rows = [Float](repeating: 0, count: kernel * channels)
        for c in 0..<channels { for j in 0..<kernel { rows[j * channels + c] = w.scalars[c * kernel + j] } }
        return rows
    }

    /// With `keeping` false nothing is stored for a backward, so threads may run it at once.
    public func forward(_ x: Tensor, keeping: Bool = true) -> Tensor {
        precondition(x.rank == 3 && x.shape[2] == channels, "conv1d expects (batch, length, \(channels)), got \(x.shape)")
        if keeping { input = x }
        let (batch, length) = (x.shape[0], x.shape[1])
        let taps = tapRows(weight.value)
        var y = Tensor(uninitialized: x.shape)  // every row starts as the bias below
        let c = channels, k = kernel, left = left
        x.withUnsafeBufferPointer { xs in y.withUnsafeMutableBufferPointer { ys in
            taps.withUnsafeBufferPointer { ws in bias.value.withUnsafeBufferPointer { bs in
                for b in 0..<batch { for t in 0..<length {
                    let out = UnsafeMutableBufferPointer(rebasing: ys[((b * length + t) * c)..<((b * length + t + 1) * c)])
                    _ = out.update(fromContentsOf: bs)
                    for j in 0..<k {
                        let s = t - left + j
                        guard s >= 0 && s < length else { continue }
                        let source = UnsafeBufferPointer(rebasing: xs[((b * length + s) * c)..<((b * length + s + 1) * c)])
                        let tap = UnsafeBufferPointer(rebasing: ws[(j * c)..<((j + 1) * c)])
                        multiplyAccumulate(source, tap, into: out)
                    }
                } }
            } }
        } }
        return y
    }

    public func releaseActivations() { input = Tensor(zeros: [0]) }

    public func backward(_ g: Tensor) -> Tensor {
        precondition(g.shape == input.shape, "conv1d backward without a matching forward")
        let (batch, length) = (g.shape[0], g.shape[1])
        let taps = tapRows(weight.value)
        var gTaps = [Float](repeating: 0, count: kernel * channels)
        var gx = Tensor(zeros: g.shape)
        let c = channels, k = kernel, left = left
        g.withUnsafeBufferPointer { gs in input.withUnsafeBufferPointer { xs in gx.withUnsafeMutableBufferPointer { gxs in
            taps.withUnsafeBufferPointer { ws in gTaps.withUnsafeMutableBufferPointer { gws in
                bias.gradient.withUnsafeMutableBufferPointer { gbs in
                    for b in 0..<batch { for t in 0..<length {
                        let upstream = UnsafeBufferPointer(rebasing: gs[((b * length + t) * c)..<((b * length + t + 1) * c)])
                        Elementwise.accumulate(upstream, into: gbs)
                        for j in 0..<k {
                            let s = t - left + j
                            guard s >= 0 && s < length else { continue }
                            let range = ((b * length + s) * c)..<((b * length + s + 1) * c)
                            multiplyAccumulate(upstream, UnsafeBufferPointer(rebasing: ws[(j * c)..<((j + 1) * c)]),
                                               into: UnsafeMutableBufferPointer(rebasing: gxs[range]))
                            multiplyAccumulate(upstream, UnsafeBufferPointer(rebasing: xs[range]),
                                               into: UnsafeMutableBufferPointer(rebasing: gws[(j * c)..<((j + 1) * c)]))
                        }
                    } }
                }
            } }
        } } }
        weight.gradient.withUnsafeMutableBufferPointer { gw in
            for cc in 0..<c { for j in 0..<k { gw[cc * k + j] += gTaps[j * c + cc] } }
        }
        return gx
    }
}

/// out[i] += a[i]·b[i], vectorised.
@inline(__always)
func multiplyAccumulate(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>, into out: UnsafeMutableBufferPointer<Float>) {
    let n = out.count
    guard n > 0 else { return }
    let pa = a.baseAddress!, pb = b.baseAddress!, po = out.baseAddress!
    var i = 0
    while i + 16 <= n {
        let va = UnsafeRawPointer(pa + i).loadUnaligned(as: SIMD16<Float>.self)
        let vb = UnsafeRawPointer(pb + i).loadUnaligned(as: SIMD16<Float>.self)
        let vo = UnsafeRawPointer(po + i).loadUnaligned(as: SIMD16<Float>.self)
        UnsafeMutableRawPointer(po + i).storeBytes(of: vo.addingProduct(va, vb), as: SIMD16<Float>.self)
        i += 16
    }
    while i < n { po[i] += pa[i] * pb[i]; i += 1 }
}
