import CPrefetch
import Tensors

/// The fast kernel: 16 channels side by side in the lanes of one register, the state loop inside.
///
/// With channels in the lanes, every per-step sum over the state (y_t = ⟨C_t, h_t⟩, and in the
/// backward Σ_n λ_n B_n, Σ_n λ_n a_n A_n h_{t−1,n}) is a chain of vector FMAs with C_t[n] and
/// B_t[n] broadcast; no horizontal sums inside the recurrence. The sums over channels the
/// backward needs (∂B_t, ∂C_t) are accumulated as vectors across channel groups and reduced once
/// per (t, n) at the end of a batch item. Decays are a_t = 2^(Δ_t·A·log₂e) with A·log₂e
/// transposed once per call. Each group first gathers its rows (Δ made from δ when dt_proj is
/// fused, softplus applied; u; ∂y) contiguously in visiting order. Any channel count (the last
/// group is zero-padded) and any state size.
extension SelectiveScan {
    /// What the forward keeps for the backward.
    public struct Saved {
        /// y before the gate (only when gated).
        var ungated: Tensor?
        /// h_t laid out (batch, length, state, channels) (only in `.storeStates`).
        var states: Tensor?
    }

    typealias Lanes = SIMD16<Float>
    static let laneCount = 16

    public static func forward(_ x: Operands, mode: MemoryMode = .recompute) -> (out: Tensor, saved: Saved) {
        x.validate()
        let s = x.shape
        var out = Tensor(uninitialized: x.u.shape)  // every (b, t, d) is stored below
        var ungated: Tensor? = x.z == nil ? nil : Tensor(uninitialized: x.u.shape)
        var states: Tensor? = mode == .storeStates ? Tensor(uninitialized: [s.batch, s.length, s.state, s.channels]) : nil
        let table = StateTable(A: x.A, shape: s)
        let groups = table.groups
        x.u.withUnsafeBufferPointer { u in x.delta.withUnsafeBufferPointer { delta in
        x.B.withUnsafeBufferPointer { B in x.C.withUnsafeBufferPointer { C in x.D.withUnsafeBufferPointer { D in
        out.withUnsafeMutableBufferPointer { o in
        table.withPointers { scaledA, _, largestRate in
            withVisitingOrder(x.order) { order in
            let p = ForwardPointers(u: .init(u.baseAddress!), delta: DeltaSource(x, delta.baseAddress!), B: .init(B.baseAddress!),
                                    C: .init(C.baseAddress!), D: .init(D.baseAddress!), scaledA: scaledA, largestRate: largestRate,
                                    out: .init(o.baseAddress!), deltaSoftplus: x.deltaSoftplus, rows: RowMap(order: order, length: s.length))
            withOptionalPointer(x.z) { z in withOptionalMutablePointer(&ungated) { ug in withOptionalMutablePointer(&states) { st in
                Parallel.forEach(s.batch * groups) { item in
                    withUnsafeTemporaryAllocation(of: Lanes.self, capacity: 2 * s.state + 2 * s.length) { buffer in
                        let (b, d0) = (item / groups, (item % groups) * laneCount)
                        let h = UnsafeMutableBufferPointer(rebasing: buffer[0..<(2 * s.state)])  // h, then A·log₂e
                        let delta = UnsafeMutableBufferPointer(rebasing: buffer[(2 * s.state)..<(2 * s.state + s.length)])
                        let u = UnsafeMutableBufferPointer(rebasing: buffer[(2 * s.state + s.length)...])
                        // Far below 2⁻¹²⁶ decays never occur in practice: the clamp is then skipped.
                        if gatherRows(p, shape: s, batch: b, firstChannel: d0, delta: delta, u: u) {
                            forwardGroup(p, shape: s, batch: b, firstChannel: d0, h: h, delta: delta, u: u,
                                         z: z, ungated: ug, states: st, clamp: false)
                        } else {
                            forwardGroup(p, shape: s, batch: b, firstChannel: d0, h: h, delta: delta, u: u,
                                         z: z, ungated: ug, states: st, clamp: true)
                        }
                    }
                }
            } } }
            }
        } } } } } } }
        return (out, Saved(ungated: ungated, states: states))
    }

    struct ForwardPointers: Sendable {
        let u: SharedPointer<Float>
        let delta: DeltaSource
        let B, C, D: SharedPointer<Float>
        /// A·log₂e, laid out (state, paddedChannels); max over the state of |A·log₂e| per channel.
        let scaledA, largestRate: SharedPointer<Float>
        let out: SharedPointer<Float>
        let deltaSoftplus: Bool
        let rows: RowMap
    }

    /// Copies Δ (softplus applied) and u of channels d0 ..< d0 + 16 of image b, in visiting
    /// order, into contiguous rows: independent loads, many in flight, instead of strided loads
    /// inside the recurrence. Returns whether every decay exponent Δ·A·log₂e stays above −126
    /// (then 2ˣ needs no clamp).
    @inline(__always)
    static func gatherRows(_ p: ForwardPointers, shape s: Shape, batch b: Int, firstChannel d0: Int,
                           delta: UnsafeMutableBufferPointer<Lanes>, u: UnsafeMutableBufferPointer<Lanes>) -> Bool {
        let width = min(laneCount, s.channels - d0)
        var largest = Lanes()
        for t in 0..<s.length {
            let row = p.rows.row(b, t), at = row * s.channels + d0
            // Rows lie a whole row of channels apart: ask for the one 8 steps ahead.
            if t + 8 < s.length { ssmamba_prefetch(p.u.base + p.rows.row(b, t + 8) * s.channels + d0) }
            let raw = p.delta.load(row: row, channels: s.channels, firstChannel: d0, width: width)
            let dt = p.deltaSoftplus ? VectorMath.softplus(raw) : raw
            delta[t] = dt
            u[t] = loadLanes(p.u.base + at, width)
            largest.replace(with: dt, where: dt .> largest)
        }
        return (largest * loadLanes(p.largestRate.base + d0, laneCount)).max() < 126
    }

    /// Channels d0 ..< d0 + 16 of image b through all t, from the gathered rows.
    @inline(__always)
    static func forwardGroup(_ p: ForwardPointers, shape s: Shape, batch b: Int, firstChannel d0: Int,
                             h: UnsafeMutableBufferPointer<Lanes>, delta: UnsafeMutableBufferPointer<Lanes>,
                             u rows: UnsafeMutableBufferPointer<Lanes>, z: SharedPointer<Float>?,
                             ungated: SharedPointer<Float>?, states: SharedPointer<Float>?, clamp: Bool) {
        let width = min(laneCount, s.channels - d0), n = s.state
        let padded = paddedChannels(s.channels)
        let skip = loadLanes(p.D.base + d0, width)
        let (current, scaledA) = (h.baseAddress!, h.baseAddress! + n)
        for i in 0..<n {
            current[i] = Lanes()
            scaledA[i] = loadLanes(p.scaledA.base + i * padded + d0, laneCount)
        }
        for t in 0..<s.length {
            let row = p.rows.row(b, t), at = row * s.channels + d0
            let dt = delta[t], u = rows[t]
            let du = dt * u
            var y = skip * u
            let bt = p.B.base + row * n, ct = p.C.base + row * n
            for i in 0..<n {
                let exponent = dt * scaledA[i]
                let a = clamp ? VectorMath.exp2(exponent) : VectorMath.exp2InRange(exponent)
                let hi = (a * current[i]).addingProduct(du, bt[i])
                current[i] = hi
                y = y.addingProduct(hi, ct[i])
                if let states { storeLanes(hi, states.base + ((b * s.length + t) * n + i) * s.channels + d0, width) }
            }
            if let z {
                if let ungated { storeLanes(y, ungated.base + at, width) }
                let zv = loadLanes(z.base + at, width)
                y = y * zv / (1 + VectorMath.exp(-zv))
            }
            storeLanes(y, p.out.base + at, width)
        }
    }

    public static func backward(_ x: Operands, saved: Saved, gradOutput g: Tensor) -> Gradients {
        x.validate()
        let s = x.shape
        precondition(g.shape == x.u.shape, "scan gradient shape \(g.shape) differs from the output's \(x.u.shape)")
        // ∂u, ∂Δ, ∂z, ∂B, ∂C are stored element by element below; ∂A and ∂D are sums.
        var grads = Gradients(u: Tensor(uninitialized: x.u.shape), delta: Tensor(uninitialized: x.u.shape), A: Tensor(zeros: x.A.shape),
                              B: Tensor(uninitialized: x.B.shape), C: Tensor(uninitialized: x.C.shape), D: Tensor(zeros: x.D.shape),
                              z: x.z == nil ? nil : Tensor(uninitialized: x.u.shape))
        let table = StateTable(A: x.A, shape: s)
        let padded = paddedChannels(s.channels)
        let workers = max(1, min(ThreadPlan.kernelWorkers, s.batch))
        // Per-worker partial sums of ∂A (laid out (state, paddedChannels)) and ∂D; they sum over
        // the batch and are reduced at the end.
        var partialA = [Float](repeating: 0, count: workers * s.state * padded)
        var partialD = [Float](repeating: 0, count: workers * padded)
        x.u.withUnsafeBufferPointer { u in x.delta.withUnsafeBufferPointer { delta in
        x.B.withUnsafeBufferPointer { B in x.C.withUnsafeBufferPointer { C in x.D.withUnsafeBufferPointer { D in
        g.withUnsafeBufferPointer { gs in
        grads.u.withUnsafeMutableBufferPointer { gu in grads.delta.withUnsafeMutableBufferPointer { gdelta in
        grads.B.withUnsafeMutableBufferPointer { gB in grads.C.withUnsafeMutableBufferPointer { gC in
        partialA.withUnsafeMutableBufferPointer { pA in partialD.withUnsafeMutableBufferPointer { pD in
        table.withPointers { scaledA, plainA, largestRate in withVisitingOrder(x.order) { order in
            let p = BackwardPointers(
                u: .init(u.baseAddress!), delta: DeltaSource(x, delta.baseAddress!), B: .init(B.baseAddress!), C: .init(C.baseAddress!),
                D: .init(D.baseAddress!), scaledA: scaledA, plainA: plainA, largestRate: largestRate, gradOutput: .init(gs.baseAddress!),
                gu: .init(gu.baseAddress!), gdelta: .init(gdelta.baseAddress!), gB: .init(gB.baseAddress!), gC: .init(gC.baseAddress!),
                partialA: .init(pA.baseAddress!), partialD: .init(pD.baseAddress!), deltaSoftplus: x.deltaSoftplus,
                rows: RowMap(order: order, length: s.length))
            withOptionalPointer(x.z) { z in withOptionalPointer(saved.ungated) { ungated in
            withOptionalPointer(saved.states) { states in withOptionalMutablePointer(&grads.z) { gz in
                _ = Parallel.chunks(s.batch) { worker, batches in
                    let work = BackwardScratch(length: s.length, state: s.state)
                    defer { work.deallocate() }
                    let steps = s.length * s.state
                    for b in batches {
                        for d0 in stride(from: 0, to: s.channels, by: laneCount) {
                            backwardGroup(p, shape: s, batch: b, firstChannel: d0, worker: worker, z: z, ungated: ungated,
                                          states: states, gz: gz, work: work)
                        }
                        // ∂C_t[n], ∂B_t[n]: the lanes summed once per batch item.
                        for i in 0..<steps {
                            let at = p.rows.row(b, i / s.state) * s.state + i % s.state
                            p.gC.base[at] = lanesSum(work.sumC[i])
                            p.gB.base[at] = lanesSum(work.sumB[i])
                            work.sumC[i] = .zero
                            work.sumB[i] = .zero
                        }
                    }
                }
            } } } }
        } } } } } } } } } } } } } }
        // Reduce the per-worker partials; ∂A back to (channels, state).
        grads.A.withUnsafeMutableBufferPointer { gA in
            for w in 0..<workers {
                for i in 0..<s.state {
                    for d in 0..<s.channels { gA[d * s.state + i] += partialA[(w * s.state + i) * padded + d] }
                }
            }
        }
        grads.D.withUnsafeMutableBufferPointer { gD in
            for w in 0..<workers {
                for d in 0..<s.channels { gD[d] += partialD[w * padded + d] }
            }
        }
        return grads
    }

    struct BackwardPointers: Sendable {
        let u: SharedPointer<Float>
        let delta: DeltaSource
        let B, C, D: SharedPointer<Float>
        /// A·log₂e and A, both laid out (state, paddedChannels); max over the state of |A·log₂e|.
        let scaledA, plainA, largestRate: SharedPointer<Float>
        let gradOutput: SharedPointer<Float>
        let gu, gdelta, gB, gC, partialA, partialD: SharedPointer<Float>
        let deltaSoftplus: Bool
        let rows: RowMap
    }

    /// One worker's buffers. `history`, `sumC`, `sumB`: entry [t·N + n]; the row buffers hold one
    /// group's 16 channels of every step contiguously (entry [t]), so the recurrences read and
    /// write L1-resident memory instead of rows strided by the channel count.
    struct BackwardScratch {
        let history, decays, sumC, sumB: UnsafeMutableBufferPointer<Lanes>
        let lambda, gA, scaledA, plainA: UnsafeMutableBufferPointer<Lanes>
        let softplusSlope, delta, u, gy, gz, ungated, gu, gdelta: UnsafeMutableBufferPointer<Lanes>
        private let storage: UnsafeMutableBufferPointer<Lanes>

        init(length: Int, state: Int) {
            let steps = length * state
            let all = UnsafeMutableBufferPointer<Lanes>.allocate(capacity: 4 * steps + 5 * state + 8 * length)
            all.initialize(repeating: .zero)
            var next = 0
            func take(_ count: Int) -> UnsafeMutableBufferPointer<Lanes> {
                defer { next += count }
                return UnsafeMutableBufferPointer(rebasing: all[next..<(next + count)])
            }
            storage = all
            // decays has one more step, kept zero: a_L multiplies λ_L = 0.
            (history, decays, sumC, sumB) = (take(steps), take(steps + state), take(steps), take(steps))
            (lambda, gA, scaledA, plainA) = (take(state), take(state), take(state), take(state))
            (softplusSlope, delta, u, gy) = (take(length), take(length), take(length), take(length))
            (gz, ungated, gu, gdelta) = (take(length), take(length), take(length), take(length))
        }

        func deallocate() { storage.deallocate() }
    }

    /// Channels d0 ..< d0 + 16 of batch item b in reverse time. The group's rows are first
    /// copied out contiguously; a forward pass recomputes h_t (unless the forward stored them);
    /// then, per step and state,
    ///     λ ← gy·C_t + a_{t+1}·λ,  ∂C_t += gy·h_t,  ∂B_t += λ·Δu,  q = λ·a_t·h_{t−1},
    ///     ∂A += q·Δ,  Σ_n q·A_n and Σ_n λ·B_t go into ∂Δ and ∂u.
    @inline(__always)
    static func backwardGroup(_ p: BackwardPointers, shape s: Shape, batch b: Int, firstChannel d0: Int, worker: Int,
                              z: SharedPointer<Float>?, ungated: SharedPointer<Float>?, states: SharedPointer<Float>?,
                              gz: SharedPointer<Float>?, work: BackwardScratch) {
        let width = min(laneCount, s.channels - d0), n = s.state, length = s.length
        let padded = paddedChannels(s.channels)
        // Gather: independent strided loads, many in flight.
        var largest = Lanes()
        for t in 0..<length {
            let row = p.rows.row(b, t), at = row * s.channels + d0
            if t + 8 < length {  // as in the forward's gather
                let ahead = p.rows.row(b, t + 8) * s.channels + d0
                ssmamba_prefetch(p.u.base + ahead)
                ssmamba_prefetch(p.gradOutput.base + ahead)
            }
            let raw = p.delta.load(row: row, channels: s.channels, firstChannel: d0, width: width)
            let dt: Lanes
            if p.deltaSoftplus {
                (dt, work.softplusSlope[t]) = VectorMath.softplusAndSlope(raw)
            } else {
                dt = raw
            }
            work.delta[t] = dt
            largest.replace(with: dt, where: dt .> largest)
            work.u[t] = loadLanes(p.u.base + at, width)
            work.gy[t] = loadLanes(p.gradOutput.base + at, width)
        }
        if let z, let ungated {
            for t in 0..<length {
                let at = p.rows.row(b, t) * s.channels + d0
                work.gz[t] = loadLanes(z.base + at, width)  // z for now; replaced by ∂z below
                work.ungated[t] = loadLanes(ungated.base + at, width)
            }
        }
        // As in the forward: the clamp of 2ˣ only when a decay could fall below 2⁻¹²⁶.
        let clamp = (largest * loadLanes(p.largestRate.base + d0, laneCount)).max() >= 126
        @inline(__always) func decay(_ exponent: Lanes) -> Lanes {
            clamp ? VectorMath.exp2(exponent) : VectorMath.exp2InRange(exponent)
        }
        // Per-step pointers and this group's rows of A (index arithmetic out of the inner loops).
        let scaledA = work.scaledA.baseAddress!, plainA = work.plainA.baseAddress!
        for i in 0..<n {
            work.lambda[i] = .zero; work.gA[i] = .zero
            scaledA[i] = loadLanes(p.scaledA.base + i * padded + d0, laneCount)
            plainA[i] = loadLanes(p.plainA.base + i * padded + d0, laneCount)
        }
        let history = work.history.baseAddress!, decays = work.decays.baseAddress!
        // a_t always (kept: recomputing 2ˣ in the reverse pass cost more than reading it back);
        // h_t from the forward's states, or recomputed.
        // (Three loops, so that no branch is left inside the state loop.)
        if let states {
            for t in 0..<length {
                let (dt, decaysT, historyT) = (work.delta[t], decays + t &* n, history + t &* n)
                for i in 0..<n {
                    decaysT[i] = decay(dt * scaledA[i])
                    historyT[i] = loadLanes(states.base + ((b * length + t) * n + i) * s.channels + d0, width)
                }
            }
        } else if length > 0 {
            let du = work.delta[0] * work.u[0], bt = p.B.base + p.rows.row(b, 0) &* n
            for i in 0..<n {
                decays[i] = decay(work.delta[0] * scaledA[i])
                history[i] = du * bt[i]  // h₋₁ = 0
            }
            for t in 1..<length {
                let dt = work.delta[t], du = dt * work.u[t]
                let bt = p.B.base + p.rows.row(b, t) &* n
                let (decaysT, historyT) = (decays + t &* n, history + t &* n)
                for i in 0..<n {
                    let a = decay(dt * scaledA[i])
                    decaysT[i] = a
                    historyT[i] = (a * historyT[i &- n]).addingProduct(du, bt[i])
                }
            }
        }
        let skip = loadLanes(p.D.base + d0, width)
        let gated = z != nil
        let (lambdas, gA) = (work.lambda.baseAddress!, work.gA.baseAddress!)
        // One reverse step; `first` (t = 0) has no h₋₁ terms. a_{t+1} is read from `decays`,
        // whose step L is zero (λ_L = 0).
        @inline(__always) func reverseStep(_ t: Int, first: Bool) {
            let row = p.rows.row(b, t)
            let dt = work.delta[t], u = work.u[t]
            var gy = work.gy[t]
            if gated {
                let zv = work.gz[t]
                let sz = 1 / (1 + VectorMath.exp(-zv))
                work.gz[t] = gy * work.ungated[t] * sz * (1 + zv * (1 - sz))
                gy *= zv * sz
                work.gy[t] = gy  // ∂ of the ungated y, for ∂D below
            }
            let du = dt * u
            let bt = p.B.base + row &* n, ct = p.C.base + row &* n
            let offset = t &* n
            let (decaysT, historyT) = (decays + offset, history + offset)
            let (sumC, sumB) = (work.sumC.baseAddress! + offset, work.sumB.baseAddress! + offset)
            var lambdaDotB = Lanes(), decayDotA = Lanes()
            for i in 0..<n {
                let lambda = (decaysT[i &+ n] * lambdas[i]).addingProduct(gy, ct[i])
                lambdas[i] = lambda
                sumC[i] = sumC[i].addingProduct(gy, historyT[i])
                sumB[i] = sumB[i].addingProduct(lambda, du)
                lambdaDotB = lambdaDotB.addingProduct(lambda, bt[i])
                if !first {
                    let q = lambda * decaysT[i] * historyT[i &- n]
                    gA[i] = gA[i].addingProduct(q, dt)
                    decayDotA = decayDotA.addingProduct(q, plainA[i])
                }
            }
            // Vector·vector products as `a * b + c`: `addingProduct` of two vectors is not
            // reliably vectorised here (it compiled to 16 scalar FMAs).
            work.gu[t] = gy * skip + dt * lambdaDotB
            work.gdelta[t] = decayDotA + u * lambdaDotB
        }
        for t in stride(from: length - 1, through: 1, by: -1) { reverseStep(t, first: false) }
        reverseStep(0, first: true)
        // ∂D = Σ_t ∂y_t ⊙ u_t (a sum kept out of the nested step: no captured variable there).
        var gD = Lanes()
        for t in 0..<length { gD = gD.addingProduct(work.gy[t], work.u[t]) }
        // Scatter.
        for t in 0..<length {
            let at = p.rows.row(b, t) * s.channels + d0
            storeLanes(work.gu[t], p.gu.base + at, width)
            let gdelta = p.deltaSoftplus ? work.gdelta[t] * work.softplusSlope[t] : work.gdelta[t]
            storeLanes(gdelta, p.gdelta.base + at, width)
        }
        if let gz {
            for t in 0..<length { storeLanes(work.gz[t], gz.base + p.rows.row(b, t) * s.channels + d0, width) }
        }
        for i in 0..<n {
            let partial = p.partialA.base + (worker * n + i) * padded + d0
            storeLanes(loadLanes(partial, laneCount) + work.gA[i], partial, laneCount)
        }
        let partial = p.partialD.base + worker * padded + d0
        storeLanes(loadLanes(partial, laneCount) + gD, partial, laneCount)
    }

    // MARK: helpers

    /// Where a step's Δ pre-activation comes from: the delta tensor's row, or δ·Wᵀ + b from the
    /// low-rank row (dt_proj fused). W is kept transposed, (R, paddedChannels), and b padded.
    final class DeltaSource: @unchecked Sendable {
        let values: UnsafePointer<Float>
        let rank: Int, padded: Int
        private let weight: UnsafeMutableBufferPointer<Float>?, bias: UnsafeMutableBufferPointer<Float>?

        init(_ x: Operands, _ values: UnsafePointer<Float>) {
            self.values = values
            let s = x.shape
            padded = SelectiveScan.paddedChannels(s.channels)
            guard let projection = x.deltaProjection else {
                (rank, weight, bias) = (0, nil, nil)
                return
            }
            rank = projection.weight.shape[1]
            let w = UnsafeMutableBufferPointer<Float>.allocate(capacity: rank * padded), b = UnsafeMutableBufferPointer<Float>.allocate(capacity: padded)
            w.initialize(repeating: 0)
            b.initialize(repeating: 0)
            for d in 0..<s.channels {
                for r in 0..<rank { w[r * padded + d] = projection.weight.scalars[d * rank + r] }
                b[d] = projection.bias.scalars[d]
            }
            (weight, bias) = (w, b)
        }

        deinit {
            weight?.deallocate()
            bias?.deallocate()
        }

        /// The pre-activation of channels d0 ..< d0 + width at `row` (other lanes 0).
        @inline(__always) func load(row: Int, channels: Int, firstChannel d0: Int, width: Int) -> Lanes {
            guard let weight = weight?.baseAddress, let bias = bias?.baseAddress else {
                return loadLanes(UnsafeMutablePointer(mutating: values) + row * channels + d0, width)
            }
            var v = loadLanes(bias + d0, laneCount)
            let low = values + row &* rank
            for r in 0..<rank { v = v.addingProduct(loadLanes(weight + (r &* padded &+ d0), laneCount), low[r]) }
            return v
        }
    }

    /// Step t of image b reads and writes row b·L + order[b·L + t] of the (batch·length)-row
    /// tensors (row b·L + t without an order).
    struct RowMap: Sendable {
        let order: SharedPointer<Int>?
        let length: Int

        @inline(__always) func row(_ b: Int, _ t: Int) -> Int {
            b * length + (order.map { $0.base[b * length + t] } ?? t)
        }
    }

    static func withVisitingOrder<R>(_ order: [Int]?, _ body: (SharedPointer<Int>?) -> R) -> R {
        guard let order else { return body(nil) }
        return order.withUnsafeBufferPointer { body(SharedPointer($0.baseAddress!)) }
    }

    /// Channels rounded up to whole lane groups.
    static func paddedChannels(_ channels: Int) -> Int { (channels + laneCount - 1) / laneCount * laneCount }

    /// A transposed to (state, paddedChannels), once as A·log₂e (for the decays) and once as A;
    /// padding lanes are 0, so their decays are 1 and their states stay 0.
    struct StateTable {
        var scaled, plain, largestRate: [Float]
        let groups: Int

        init(A: Tensor, shape s: Shape) {
            let padded = SelectiveScan.paddedChannels(s.channels)
            groups = padded / SelectiveScan.laneCount
            scaled = [Float](repeating: 0, count: s.state * padded)
            plain = scaled
            largestRate = [Float](repeating: 0, count: padded)
            A.withUnsafeBufferPointer { a in
                for d in 0..<s.channels {
                    for i in 0..<s.state {
                        plain[i * padded + d] = a[d * s.state + i]
                        scaled[i * padded + d] = a[d * s.state + i] * 1.442_695_04
                        largestRate[d] = max(largestRate[d], abs(scaled[i * padded + d]))
                    }
                }
            }
        }

        func withPointers<R>(_ body: (SharedPointer<Float>, SharedPointer<Float>, SharedPointer<Float>) -> R) -> R {
            scaled.withUnsafeBufferPointer { s in plain.withUnsafeBufferPointer { p in largestRate.withUnsafeBufferPointer { l in
                body(.init(s.baseAddress!), .init(p.baseAddress!), .init(l.baseAddress!))
            } } }
        }
    }

    /// The sum of the 16 lanes by halves (`SIMD.sum()` adds them one after another).
    @inline(__always) static func lanesSum(_ v: Lanes) -> Float {
        let v8 = v.lowHalf + v.highHalf
        let v4 = v8.lowHalf + v8.highHalf
        let v2 = v4.lowHalf + v4.highHalf
        return v2[0] + v2[1]
    }

    /// The first `width` floats at `base`, the other lanes 0.
    @inline(__always) static func loadLanes(_ base: UnsafeMutablePointer<Float>, _ width: Int) -> Lanes {
        if width == laneCount { return UnsafeRawPointer(base).loadUnaligned(as: Lanes.self) }
        var v = Lanes()
        for c in 0..<width { v[c] = base[c] }
        return v
    }

    /// Stores the first `width` lanes at `base`.
    @inline(__always) static func storeLanes(_ v: Lanes, _ base: UnsafeMutablePointer<Float>, _ width: Int) {
        if width == laneCount {
            UnsafeMutableRawPointer(base).storeBytes(of: v, as: Lanes.self)
            return
        }
        for c in 0..<width { base[c] = v[c] }
    }
}

/// Calls `body` with a shareable pointer to an optional tensor's storage (nil when absent).
func withOptionalPointer<R>(_ tensor: Tensor?, _ body: (SharedPointer<Float>?) -> R) -> R {
    guard let tensor else { return body(nil) }
    return tensor.withUnsafeBufferPointer { body($0.baseAddress.map(SharedPointer.init)) }
}

func withOptionalMutablePointer<R>(_ tensor: inout Tensor?, _ body: (SharedPointer<Float>?) -> R) -> R {
    guard tensor != nil else { return body(nil) }
    return tensor!.withUnsafeMutableBufferPointer { body($0.baseAddress.map(SharedPointer.init)) }
}
