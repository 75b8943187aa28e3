import Foundation
import Tensors

/// DMS, the Directional Multi-scale mixer (MODEL.md), on tokens (batch, count, dim):
///
///     x, z = split(in_proj(U))                         in_proj: dim → 2E, no bias
///     x = silu(Σ_k conv1d_k(x))                        local path, "same" padding, k ∈ kernels
///     y = Σ_s w_s · unpermute_s(scan_s(permute_s(x)))  one parameter set per direction s
///     out = out_proj(y ⊙ silu(z))                      out_proj: E → dim, no bias
///
/// Several kernels (e.g. 3, 5, 7) make the "multi-scale" local path ("same" padding, or causal as
/// in Vim); the directions are the "directional" part. Merge weights w: `mean` 1/S (default),
/// `sum` 1, or `softmax`: w = softmax(merge_logits), learned (initialised equal, i.e. the mean);
/// then ∂w_s = ⟨∂y, unpermute_s(y_s)⟩ and ∂logits = w ⊙ (∂w − ⟨w, ∂w⟩).
public final class DirectionalMultiScale: ParameterOwner, KeepsActivations {
    public enum Merge: String, Sendable, Codable { case mean, sum, softmax }

    let inProjection: Linear
    let convolutions: [DepthwiseConv1D]
    let scans: [DirectionalScan]
    let outProjection: Linear
    let expanded: Int
    let merge: Merge
    let memoryMode: SelectiveScan.MemoryMode
    /// The learned merge's logits (softmax merge only).
    let mergeLogits: Parameter?

    private var convolved = Tensor(zeros: [0]), gate = Tensor(zeros: [0]), merged = Tensor(zeros: [0])
    private var directionOutputs: [Tensor] = []  // kept for the learned merge's gradient

    public init(_ name: String, dim: Int, expand: Int, state: Int, directions: [ScanDirection], kernels: [Int],
                merge: Merge = .mean, padding: DepthwiseConv1D.Padding = .same,
                memoryMode: SelectiveScan.MemoryMode = .recompute, using rng: inout RandomGenerator) {
        precondition(!directions.isEmpty && !kernels.isEmpty, "DMS needs at least one direction and one kernel")
        expanded = expand * dim
        self.merge = merge
        self.memoryMode = memoryMode
        let rank = (dim + 15) / 16
        inProjection = Linear(parameterName(name, "in_proj"), inFeatures: dim, outFeatures: 2 * expanded, bias: false, using: &rng)
        var convs: [DepthwiseConv1D] = []
        for (i, k) in kernels.enumerated() {
            convs.append(DepthwiseConv1D(parameterName(name, "convs.\(i)"), channels: expand * dim, kernel: k, padding: padding, using: &rng))
        }
        convolutions = convs
        var made: [DirectionalScan] = []
        for (i, direction) in directions.enumerated() {
            made.append(DirectionalScan(parameterName(name, "scans.\(i)"), direction: direction, channels: expand * dim, state: state,
                                        rank: rank, using: &rng))
        }
        scans = made
        outProjection = Linear(parameterName(name, "out_proj"), inFeatures: expand * dim, outFeatures: dim, bias: false, using: &rng)
        mergeLogits = merge == .softmax ? Parameter(parameterName(name, "merge_logits"), Tensor(zeros: [directions.count]), decays: false) : nil
    }

    public var parameters: [Parameter] {
        inProjection.parameters + convolutions.flatMap(\.parameters) + scans.flatMap(\.parameters) + outProjection.parameters
            + (mergeLogits.map { [$0] } ?? [])
    }

    /// w_s for every direction.
    var mergeWeights: [Float] {
        switch merge {
        case .mean: return [Float](repeating: 1 / Float(scans.count), count: scans.count)
        case .sum: return [Float](repeating: 1, count: scans.count)
        case .softmax:
            let logits = mergeLogits!.value.scalars
            let top = logits.max() ?? 0
            let e = logits.map { Foundation.exp($0 - top) }
            let total = e.reduce(0, +)
            return e.map { $0 / total }
        }
    }

    public func forward(_ u: Tensor, grid: TokenGrid) -> Tensor {
        let (batch, count) = (u.shape[0], u.shape[1])
        let xz = inProjection.forward(u)  // (B, L, 2E)
        var x = Tensor(uninitialized: [batch, count, expanded])
        gate = Tensor(uninitialized: [batch, count, expanded])
        split(xz, into: &x, and: &gate)  // writes every element of both
        convolved = convolutions[0].forward(x)
        for conv in convolutions.dropFirst() { convolved = convolved + conv.forward(x) }
        let activated = convolved.mapped(Activation.silu)  // recomputed in the backward, not kept
        let orders = scans.map { $0.direction.order(for: grid) }
        directionOutputs = []
        let weights = mergeWeights
        for (s, (scan, order)) in zip(scans, orders).enumerated() {
            let y = scan.forward(activated, order: order, mode: memoryMode)
            if s == 0 {
                merged = y * weights[0]
            } else {
                merged.withUnsafeMutableBufferPointer { m in y.withUnsafeBufferPointer { Elementwise.accumulate($0, scaledBy: weights[s], into: m) } }
            }
            if merge == .softmax { directionOutputs.append(y) }
        }
        let gated = merged * gate.mapped(Activation.silu)
        return outProjection.forward(gated)
    }

    public func releaseActivations() {
        convolved = Tensor(zeros: [0])
        gate = Tensor(zeros: [0])
        merged = Tensor(zeros: [0])
        directionOutputs = []
        inProjection.releaseActivations()
        outProjection.releaseActivations()
        convolutions.forEach { $0.releaseActivations() }
        scans.forEach { $0.releaseActivations() }
    }

    public func backward(_ g: Tensor) -> Tensor {
        let gGated = outProjection.backward(g)
        // gated = y ⊙ silu(z): ∂y = g ⊙ silu(z), ∂z = silu′(z) ⊙ (g ⊙ y).
        let gMerged = gGated * gate.mapped(Activation.silu)
        let gGate = gate.zipped(gGated * merged, Activation.siluBackward)
        var gActivated = Tensor(zeros: [0])  // the first direction's ∂input, then the others added
        let activated = convolved.mapped(Activation.silu)
        let weights = mergeWeights
        var gWeights = [Float](repeating: 0, count: scans.count)
        for (s, scan) in scans.enumerated() {
            if merge == .softmax {
                gWeights[s] = gMerged.withUnsafeBufferPointer { a in directionOutputs[s].withUnsafeBufferPointer { b in Reduction.dot(a, b) } }
            }
            let gInput = scan.backward(gMerged * weights[s], input: activated)
            if s == 0 {
                gActivated = gInput
            } else {
                gActivated.withUnsafeMutableBufferPointer { ga in gInput.withUnsafeBufferPointer { Elementwise.accumulate($0, into: ga) } }
            }
        }
        if let mergeLogits {
            let mean = zip(weights, gWeights).reduce(0) { $0 + $1.0 * $1.1 }
            for s in weights.indices { mergeLogits.gradient.scalars[s] += weights[s] * (gWeights[s] - mean) }
        }
        let gConvolved = convolved.zipped(gActivated, Activation.siluBackward)
        var gX = convolutions[0].backward(gConvolved)
        for conv in convolutions.dropFirst() { gX = gX + conv.backward(gConvolved) }
        var gXZ = Tensor(uninitialized: [g.shape[0], g.shape[1], 2 * expanded])
        concatenate(gX, gGate, into: &gXZ)
        return inProjection.backward(gXZ)
    }

    /// (B, L, 2E) → first half of each row into `x`, second into `z`.
    private func split(_ xz: Tensor, into x: inout Tensor, and z: inout Tensor) {
        let e = expanded, rows = xz.count / (2 * e)
        xz.withUnsafeBufferPointer { s in x.withUnsafeMutableBufferPointer { xs in z.withUnsafeMutableBufferPointer { zs in
            for r in 0..<rows {
                _ = UnsafeMutableBufferPointer(rebasing: xs[(r * e)..<((r + 1) * e)]).update(fromContentsOf: UnsafeBufferPointer(rebasing: s[(2 * r * e)..<((2 * r + 1) * e)]))
                _ = UnsafeMutableBufferPointer(rebasing: zs[(r * e)..<((r + 1) * e)]).update(fromContentsOf: UnsafeBufferPointer(rebasing: s[((2 * r + 1) * e)..<((2 * r + 2) * e)]))
            }
        } } }
    }

    private func concatenate(_ x: Tensor, _ z: Tensor, into xz: inout Tensor) {
        let e = expanded, rows = x.count / e
        x.withUnsafeBufferPointer { xs in z.withUnsafeBufferPointer { zs in xz.withUnsafeMutableBufferPointer { d in
            for r in 0..<rows {
                _ = UnsafeMutableBufferPointer(rebasing: d[(2 * r * e)..<((2 * r + 1) * e)]).update(fromContentsOf: UnsafeBufferPointer(rebasing: xs[(r * e)..<((r + 1) * e)]))
                _ = UnsafeMutableBufferPointer(rebasing: d[((2 * r + 1) * e)..<((2 * r + 2) * e)]).update(fromContentsOf: UnsafeBufferPointer(rebasing: zs[(r * e)..<((r + 1) * e)]))
            }
        } } }
    }
}
