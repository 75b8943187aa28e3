import Foundation
import Randomness
import Tensors

/// DMS, the Directional Multi-scale mixer (docs/MODEL.md), on tokens (batch, count, dim):
///
///     x, z = split(in_proj(U))                         in_proj: dim → 2E, no bias
///     x = silu(Σ_k conv1d_k(x))                        local path, "same" padding, k ∈ kernels
///     y = Σ_s w_s · unpermute_s(scan_s(permute_s(x)))  one parameter set per direction s
///     out = out_proj(y ⊙ silu(z))                      out_proj: E → dim, no bias
///
/// Several kernels (e.g. 3, 5, 7) make the "multi-scale" local path ("same" padding, or causal as
/// in Vim); the directions are the "directional" part. With `localPerDirection` (Vim's form) each
/// direction s has its own local path, run along its own visiting order P_s:
///
///     y_s = scan_s(P_s⁻¹ silu(Σ_k conv1d_{s,k}(P_s x)))
///
/// so a vertical scan sees vertical neighbours, and on a masked grid each direction convolves the
/// visible tokens in the order it visits them. Merge weights w: `mean` 1/S (default),
/// `sum` 1, or `softmax`: w = softmax(merge_logits), learned (initialised equal, i.e. the mean);
/// then ∂w_s = ⟨∂y, unpermute_s(y_s)⟩ and ∂logits = w ⊙ (∂w − ⟨w, ∂w⟩).
public final class DirectionalMultiScale: ParameterOwner, KeepsActivations {
    public enum Merge: String, Sendable, Codable { case mean, sum, softmax }

    let inProjection: Linear
    /// The shared local path (empty with `localPerDirection`).
    let convolutions: [DepthwiseConv1D]
    /// Each direction's own local path (empty unless `localPerDirection`).
    let directionConvolutions: [[DepthwiseConv1D]]
    let scans: [DirectionalScan]
    let outProjection: Linear
    let expanded: Int
    let merge: Merge
    let memoryMode: SelectiveScan.MemoryMode
    /// The learned merge's logits (softmax merge only).
    let mergeLogits: Parameter?

    private var convolved = Tensor(zeros: [0]), gate = Tensor(zeros: [0]), merged = Tensor(zeros: [0])
    private var directionOutputs: [Tensor] = []  // kept for the learned merge's gradient
    private var directionConvolved: [Tensor] = [], orders: [[Int]] = []  // per-direction local paths (visiting order)

    public init(_ name: String, dim: Int, expand: Int, state: Int, directions: [ScanDirection], kernels: [Int],
                merge: Merge = .mean, padding: DepthwiseConv1D.Padding = .same, localPerDirection: Bool = false,
                memoryMode: SelectiveScan.MemoryMode = .recompute, using rng: inout RandomGenerator) {
        precondition(!directions.isEmpty && !kernels.isEmpty, "DMS needs at least one direction and one kernel")
        expanded = expand * dim
        self.merge = merge
        self.memoryMode = memoryMode
        let rank = (dim + 15) / 16
        inProjection = Linear(parameterName(name, "in_proj"), inFeatures: dim, outFeatures: 2 * expanded, bias: false, using: &rng)
        var convs: [DepthwiseConv1D] = []
        if !localPerDirection {
            for (i, k) in kernels.enumerated() {
                convs.append(DepthwiseConv1D(parameterName(name, "convs.\(i)"), channels: expand * dim, kernel: k, padding: padding, using: &rng))
            }
        }
        convolutions = convs
        var made: [DirectionalScan] = [], own: [[DepthwiseConv1D]] = []
        for (i, direction) in directions.enumerated() {
            if localPerDirection {
                own.append(kernels.enumerated().map { j, k in
                    DepthwiseConv1D(parameterName(name, "scans.\(i).convs.\(j)"), channels: expand * dim, kernel: k, padding: padding, using: &rng)
                })
            }
            made.append(DirectionalScan(parameterName(name, "scans.\(i)"), direction: direction, channels: expand * dim, state: state,
                                        rank: rank, using: &rng))
        }
        scans = made
        directionConvolutions = own
        outProjection = Linear(parameterName(name, "out_proj"), inFeatures: expand * dim, outFeatures: dim, bias: false, using: &rng)
        mergeLogits = merge == .softmax ? Parameter(parameterName(name, "merge_logits"), Tensor(zeros: [directions.count]), decays: false) : nil
    }

    public var parameters: [Parameter] {
        inProjection.parameters + convolutions.flatMap(\.parameters) + directionConvolutions.joined().flatMap(\.parameters)
            + scans.flatMap(\.parameters) + outProjection.parameters
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

    /// Keeps what the backward needs; with `keeping` false nothing is stored, so threads may run it at once.
    public func forward(_ u: Tensor, grid: TokenGrid, keeping: Bool = true) -> Tensor {
        let (batch, count) = (u.shape[0], u.shape[1])
        let xz = inProjection.forward(u, keeping: keeping)  // (B, L, 2E)
        var x = Tensor(uninitialized: [batch, count, expanded])
        var gate = Tensor(uninitialized: [batch, count, expanded])
        split(xz, into: &x, and: &gate)  // writes every element of both
        let orders = scans.map { $0.direction.order(for: grid) }
        var activated = Tensor(zeros: [0]), convolved = Tensor(zeros: [0]), directionConvolved: [Tensor] = []
        if directionConvolutions.isEmpty {
            convolved = Self.localPath(convolutions, x, keeping: keeping)
            activated = convolved.mapped(Activation.silu)  // recomputed in the backward, not kept
        } else {
            directionConvolved = zip(directionConvolutions, orders).map { convs, order in Self.localPath(convs, Self.gather(x, order), keeping: keeping) }
        }
        var directionOutputs: [Tensor] = []
        var merged = Tensor(zeros: [0])
        let weights = mergeWeights
        for (s, (scan, order)) in zip(scans, orders).enumerated() {
            let input = directionConvolutions.isEmpty ? activated : Self.scatter(directionConvolved[s].mapped(Activation.silu), order)
            let y = scan.forward(input, order: order, mode: memoryMode, keeping: keeping)
            if s == 0 {
                merged = y * weights[0]
            } else {
                merged.withUnsafeMutableBufferPointer { m in y.withUnsafeBufferPointer { Elementwise.accumulate($0, scaledBy: weights[s], into: m) } }
            }
            if keeping && merge == .softmax { directionOutputs.append(y) }
        }
        let gated = merged * gate.mapped(Activation.silu)
        if keeping {
            (self.gate, self.convolved, self.directionConvolved, self.merged, self.directionOutputs) = (gate, convolved, directionConvolved, merged, directionOutputs)
            self.orders = directionConvolutions.isEmpty ? [] : orders
        }
        return outProjection.forward(gated, keeping: keeping)
    }

    /// Σ_k conv1d_k(x).
    static func localPath(_ convolutions: [DepthwiseConv1D], _ x: Tensor, keeping: Bool = true) -> Tensor {
        var sum = convolutions[0].forward(x, keeping: keeping)
        for conv in convolutions.dropFirst() { sum = sum + conv.forward(x, keeping: keeping) }
        return sum
    }

    /// (B, L, C) rows into visiting order: out[b, t] = x[b, order[b·L + t]].
    static func gather(_ x: Tensor, _ order: [Int]) -> Tensor {
        reorder(x, order, inverse: false)
    }

    /// Back from visiting order: out[b, order[b·L + t]] = x[b, t].
    static func scatter(_ x: Tensor, _ order: [Int]) -> Tensor {
        reorder(x, order, inverse: true)
    }

    private static func reorder(_ x: Tensor, _ order: [Int], inverse: Bool) -> Tensor {
        let (batch, length, width) = (x.shape[0], x.shape[1], x.shape[2])
        var out = Tensor(uninitialized: x.shape)
        x.withUnsafeBufferPointer { src in out.withUnsafeMutableBufferPointer { dst in
            for b in 0..<batch {
                for t in 0..<length {
                    let (visited, stored) = (b * length + t, b * length + order[b * length + t])
                    let (from, to) = inverse ? (visited, stored) : (stored, visited)
                    _ = UnsafeMutableBufferPointer(rebasing: dst[(to * width)..<((to + 1) * width)])
                        .update(fromContentsOf: UnsafeBufferPointer(rebasing: src[(from * width)..<((from + 1) * width)]))
                }
            }
        } }
        return out
    }

    public func releaseActivations() {
        directionConvolved = []
        orders = []
        directionConvolutions.joined().forEach { $0.releaseActivations() }
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
        let activated = directionConvolutions.isEmpty ? convolved.mapped(Activation.silu) : Tensor(zeros: [0])
        let weights = mergeWeights
        var gWeights = [Float](repeating: 0, count: scans.count)
        var gX = Tensor(zeros: [0])  // per-direction local paths: each direction's ∂x, summed
        for (s, scan) in scans.enumerated() {
            if merge == .softmax {
                gWeights[s] = gMerged.withUnsafeBufferPointer { a in directionOutputs[s].withUnsafeBufferPointer { b in Reduction.dot(a, b) } }
            }
            if directionConvolutions.isEmpty {
                let gInput = scan.backward(gMerged * weights[s], input: activated)
                if s == 0 {
                    gActivated = gInput
                } else {
                    gActivated.withUnsafeMutableBufferPointer { ga in gInput.withUnsafeBufferPointer { Elementwise.accumulate($0, into: ga) } }
                }
            } else {
                // y_s = scan_s(P⁻¹ silu(c_s)), c_s = Σ_k conv_{s,k}(P x): back through each step in turn.
                let own = directionConvolved[s]
                let gInput = scan.backward(gMerged * weights[s], input: Self.scatter(own.mapped(Activation.silu), orders[s]))
                let gConvolved = own.zipped(Self.gather(gInput, orders[s]), Activation.siluBackward)
                var gVisited = directionConvolutions[s][0].backward(gConvolved)
                for conv in directionConvolutions[s].dropFirst() { gVisited = gVisited + conv.backward(gConvolved) }
                let gDirection = Self.scatter(gVisited, orders[s])
                if s == 0 {
                    gX = gDirection
                } else {
                    gX.withUnsafeMutableBufferPointer { ga in gDirection.withUnsafeBufferPointer { Elementwise.accumulate($0, into: ga) } }
                }
            }
        }
        if let mergeLogits {
            let mean = zip(weights, gWeights).reduce(0) { $0 + $1.0 * $1.1 }
            for s in weights.indices { mergeLogits.gradient.scalars[s] += weights[s] * (gWeights[s] - mean) }
        }
        if directionConvolutions.isEmpty {
            let gConvolved = convolved.zipped(gActivated, Activation.siluBackward)
            gX = convolutions[0].backward(gConvolved)
            for conv in convolutions.dropFirst() { gX = gX + conv.backward(gConvolved) }
        }
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
