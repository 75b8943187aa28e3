import Tensors

extension SelectiveScan {
    /// What the forward keeps for the backward.
    public struct Saved {
        /// y before the gate (only when gated).
        var ungated: Tensor?
        /// h_t laid out (batch, channels, length, state) (only in `.storeStates`).
        var states: Tensor?
    }

    /// True when the fast kernel applies: state size 16 and channels a multiple of 4. Other sizes
    /// run the reference loops.
    public static func hasFastKernel(_ shape: Shape) -> Bool {
        shape.state == 16 && shape.channels % 4 == 0
    }

    public static func forward(_ x: Operands, mode: MemoryMode = .recompute) -> (out: Tensor, saved: Saved) {
        x.validate()
        let s = x.shape
        guard hasFastKernel(s) else {
            return (reference(x), Saved(ungated: x.z == nil ? nil : reference(Operands(u: x.u, delta: x.delta, A: x.A, B: x.B, C: x.C, D: x.D)), states: nil))
        }
        var out = Tensor(zeros: x.u.shape)
        var ungated: Tensor? = x.z == nil ? nil : Tensor(zeros: x.u.shape)
        var states: Tensor? = mode == .storeStates ? Tensor(zeros: [s.batch, s.channels, s.length, 16]) : nil
        x.u.withUnsafeBufferPointer { u in x.delta.withUnsafeBufferPointer { delta in
            x.A.withUnsafeBufferPointer { A in x.B.withUnsafeBufferPointer { B in
                x.C.withUnsafeBufferPointer { C in x.D.withUnsafeBufferPointer { D in
                    out.withUnsafeMutableBufferPointer { o in
                        let pointers = ForwardPointers(u: .init(u.baseAddress!), delta: .init(delta.baseAddress!), A: .init(A.baseAddress!),
                                                       B: .init(B.baseAddress!), C: .init(C.baseAddress!), D: .init(D.baseAddress!),
                                                       out: .init(o.baseAddress!))
                        withOptionalPointer(x.z) { z in withOptionalMutablePointer(&ungated) { ug in withOptionalMutablePointer(&states) { st in
                            let groups = s.channels / 4
                            Parallel.forEach(s.batch * groups) { item in
                                forwardChains(pointers, shape: s, batch: item / groups, firstChannel: (item % groups) * 4,
                                              z: z, ungated: ug, states: st)
                            }
                        } } }
                    }
                } }
            } }
        } }
        return (out, Saved(ungated: ungated, states: states))
    }

    struct ForwardPointers: Sendable {
        let u, delta, A, B, C, D: SharedPointer<Float>
        let out: SharedPointer<Float>
    }

    /// Steps whose decays exp(Δ·A) are computed ahead of the recurrence, as one vectorised loop:
    /// the recurrence itself is then a chain of FMAs (PLATFORM.md: 0.8 vs 2.4–4.8 ns per update).
    static let decayChunk = 16

    /// Four chains (b, d0…d0+3) through all t; h_t for each chain in one 16-lane register.
    @inline(__always)
    static func forwardChains(_ p: ForwardPointers, shape s: Shape, batch b: Int, firstChannel d0: Int,
                              z: SharedPointer<Float>?, ungated: SharedPointer<Float>?, states: SharedPointer<Float>?) {
        typealias V = SIMD16<Float>
        let skip = SIMD4<Float>(p.D.base[d0], p.D.base[d0 + 1], p.D.base[d0 + 2], p.D.base[d0 + 3])
        var h0 = V(), h1 = V(), h2 = V(), h3 = V()
        withUnsafeTemporaryAllocation(of: V.self, capacity: 4 * decayChunk) { decay in
            var t0 = 0
            while t0 < s.length {
                let steps = min(decayChunk, s.length - t0)
                // Phase 1: decay[4·step + c] = exp(Δ[t, d0 + c] · A[d0 + c]), independent of h; the
                // products first, then one call of the vectorised exp kernel over the whole chunk.
                for i in 0..<(4 * steps) {
                    let c = i & 3
                    let dt = p.delta.base[(b * s.length + t0 + (i >> 2)) * s.channels + d0 + c]
                    decay[i] = dt * load(p.A.base, (d0 + c) * 16)
                }
                decay.withMemoryRebound(to: Float.self) { lanes in
                    let chunk = UnsafeMutableBufferPointer(rebasing: lanes[0..<(64 * steps)])
                    Activation.exp(UnsafeBufferPointer(chunk), into: chunk)
                }
                // Phase 2: the recurrence.
                for step in 0..<steps {
                    let t = t0 + step
                    let row = b * s.length + t
                    let bt = load(p.B.base, row * 16), ct = load(p.C.base, row * 16)
                    let base = row * s.channels + d0
                    let dt = SIMD4<Float>(p.delta.base[base], p.delta.base[base + 1], p.delta.base[base + 2], p.delta.base[base + 3])
                    let u = SIMD4<Float>(p.u.base[base], p.u.base[base + 1], p.u.base[base + 2], p.u.base[base + 3])
                    let du = dt * u
                    h0 = (decay[4 * step] * h0).addingProduct(bt, du[0])
                    h1 = (decay[4 * step + 1] * h1).addingProduct(bt, du[1])
                    h2 = (decay[4 * step + 2] * h2).addingProduct(bt, du[2])
                    h3 = (decay[4 * step + 3] * h3).addingProduct(bt, du[3])
                    var y = SIMD4<Float>(lanesSum(ct * h0), lanesSum(ct * h1), lanesSum(ct * h2), lanesSum(ct * h3))
                    y = y.addingProduct(skip, u)
                    if let states {
                        let at = ((b * s.channels + d0) * s.length + t) * 16
                        let stride = s.length * 16
                        store(h0, states.base, at); store(h1, states.base, at + stride)
                        store(h2, states.base, at + 2 * stride); store(h3, states.base, at + 3 * stride)
                    }
                    if let z {
                        if let ungated { for c in 0..<4 { ungated.base[base + c] = y[c] } }
                        let zv = SIMD4<Float>(z.base[base], z.base[base + 1], z.base[base + 2], z.base[base + 3])
                        y = y * zv / (1 + exp4(-zv))
                    }
                    for c in 0..<4 { p.out.base[base + c] = y[c] }
                }
                t0 += steps
            }
        }
    }

    public static func backward(_ x: Operands, saved: Saved, gradOutput g: Tensor) -> Gradients {
        x.validate()
        let s = x.shape
        precondition(g.shape == x.u.shape, "scan gradient shape \(g.shape) differs from the output's \(x.u.shape)")
        guard hasFastKernel(s) else { return referenceBackward(x, gradOutput: g) }
        var grads = Gradients(u: Tensor(zeros: x.u.shape), delta: Tensor(zeros: x.u.shape), A: Tensor(zeros: x.A.shape),
                              B: Tensor(zeros: x.B.shape), C: Tensor(zeros: x.C.shape), D: Tensor(zeros: x.D.shape),
                              z: x.z == nil ? nil : Tensor(zeros: x.u.shape))
        let workers = max(1, min(ThreadPlan.kernelWorkers, s.batch))
        // Per-worker partial sums of ∂A and ∂D (they sum over the batch), reduced at the end.
        var partialA = [Float](repeating: 0, count: workers * s.channels * 16)
        var partialD = [Float](repeating: 0, count: workers * s.channels)
        x.u.withUnsafeBufferPointer { u in x.delta.withUnsafeBufferPointer { delta in
        x.A.withUnsafeBufferPointer { A in x.B.withUnsafeBufferPointer { B in
        x.C.withUnsafeBufferPointer { C in x.D.withUnsafeBufferPointer { D in
        g.withUnsafeBufferPointer { gs in
        grads.u.withUnsafeMutableBufferPointer { gu in grads.delta.withUnsafeMutableBufferPointer { gdelta in
        grads.B.withUnsafeMutableBufferPointer { gB in grads.C.withUnsafeMutableBufferPointer { gC in
        partialA.withUnsafeMutableBufferPointer { pA in partialD.withUnsafeMutableBufferPointer { pD in
            let p = BackwardPointers(
                u: .init(u.baseAddress!), delta: .init(delta.baseAddress!), A: .init(A.baseAddress!), B: .init(B.baseAddress!),
                C: .init(C.baseAddress!), D: .init(D.baseAddress!), gradOutput: .init(gs.baseAddress!),
                gu: .init(gu.baseAddress!), gdelta: .init(gdelta.baseAddress!), gB: .init(gB.baseAddress!), gC: .init(gC.baseAddress!),
                partialA: .init(pA.baseAddress!), partialD: .init(pD.baseAddress!))
            withOptionalPointer(x.z) { z in withOptionalPointer(saved.ungated) { ungated in
            withOptionalPointer(saved.states) { states in withOptionalMutablePointer(&grads.z) { gz in
                _ = Parallel.chunks(s.batch) { worker, batches in
                    var scratch = [SIMD16<Float>](repeating: .zero, count: 8 * s.length)
                    scratch.withUnsafeMutableBufferPointer { buffer in
                        let history = UnsafeMutableBufferPointer(rebasing: buffer[0..<(4 * s.length)])
                        let decays = UnsafeMutableBufferPointer(rebasing: buffer[(4 * s.length)...])
                        for b in batches {
                            for d0 in stride(from: 0, to: s.channels, by: 4) {
                                backwardChains(p, shape: s, batch: b, firstChannel: d0, worker: worker, z: z, ungated: ungated,
                                               states: states, gz: gz, history: history, decays: decays)
                            }
                        }
                    }
                }
            } } } }
        } } } } } } } } } } } } }
        // Reduce the per-worker partials.
        grads.A.withUnsafeMutableBufferPointer { gA in
            partialA.withUnsafeBufferPointer { pA in
                for w in 0..<workers {
                    Elementwise.accumulate(UnsafeBufferPointer(rebasing: pA[(w * gA.count)..<((w + 1) * gA.count)]), into: gA)
                }
            }
        }
        grads.D.withUnsafeMutableBufferPointer { gD in
            partialD.withUnsafeBufferPointer { pD in
                for w in 0..<workers {
                    Elementwise.accumulate(UnsafeBufferPointer(rebasing: pD[(w * gD.count)..<((w + 1) * gD.count)]), into: gD)
                }
            }
        }
        return grads
    }

    struct BackwardPointers: Sendable {
        let u, delta, A, B, C, D, gradOutput: SharedPointer<Float>
        let gu, gdelta, gB, gC, partialA, partialD: SharedPointer<Float>
    }

    /// Four chains (b, d0…d0+3) in reverse time, interleaved as in the forward so that the
    /// per-step sums over channels (∂B_t, ∂C_t) are one read-modify-write instead of four. The
    /// decays a_t are computed first (one vectorised loop); h_t comes from the saved states or is
    /// recomputed into `history`. Both buffers hold 4·L vectors, entry [4t + c].
    @inline(__always)
    static func backwardChains(_ p: BackwardPointers, shape s: Shape, batch b: Int, firstChannel d0: Int, worker: Int,
                               z: SharedPointer<Float>?, ungated: SharedPointer<Float>?, states: SharedPointer<Float>?,
                               gz: SharedPointer<Float>?, history: UnsafeMutableBufferPointer<SIMD16<Float>>,
                               decays: UnsafeMutableBufferPointer<SIMD16<Float>>) {
        typealias V = SIMD16<Float>
        let length = s.length
        for i in 0..<(4 * length) {
            let c = i & 3
            decays[i] = p.delta.base[(b * length + (i >> 2)) * s.channels + d0 + c] * load(p.A.base, (d0 + c) * 16)
        }
        decays.withMemoryRebound(to: Float.self) { lanes in
            Activation.exp(UnsafeBufferPointer(lanes), into: lanes)
        }
        if let states {
            for c in 0..<4 {
                let at = (b * s.channels + d0 + c) * length * 16
                for t in 0..<length { history[4 * t + c] = load(states.base, at + t * 16) }
            }
        } else {
            var h0 = V(), h1 = V(), h2 = V(), h3 = V()
            for t in 0..<length {
                let row = b * length + t, index = row * s.channels + d0
                let bt = load(p.B.base, row * 16)
                h0 = (decays[4 * t] * h0).addingProduct(bt, p.delta.base[index] * p.u.base[index])
                h1 = (decays[4 * t + 1] * h1).addingProduct(bt, p.delta.base[index + 1] * p.u.base[index + 1])
                h2 = (decays[4 * t + 2] * h2).addingProduct(bt, p.delta.base[index + 2] * p.u.base[index + 2])
                h3 = (decays[4 * t + 3] * h3).addingProduct(bt, p.delta.base[index + 3] * p.u.base[index + 3])
                history[4 * t] = h0; history[4 * t + 1] = h1; history[4 * t + 2] = h2; history[4 * t + 3] = h3
            }
        }
        let aRows = (load(p.A.base, d0 * 16), load(p.A.base, (d0 + 1) * 16), load(p.A.base, (d0 + 2) * 16), load(p.A.base, (d0 + 3) * 16))
        var lambda = (V(), V(), V(), V()), aNext = (V(), V(), V(), V()), gA = (V(), V(), V(), V())
        var gD = SIMD4<Float>()
        let skip = SIMD4<Float>(p.D.base[d0], p.D.base[d0 + 1], p.D.base[d0 + 2], p.D.base[d0 + 3])
        var t = length - 1
        while t >= 0 {
            let row = b * length + t, index = row * s.channels + d0
            let dt = SIMD4<Float>(p.delta.base[index], p.delta.base[index + 1], p.delta.base[index + 2], p.delta.base[index + 3])
            let u = SIMD4<Float>(p.u.base[index], p.u.base[index + 1], p.u.base[index + 2], p.u.base[index + 3])
            var gy = SIMD4<Float>(p.gradOutput.base[index], p.gradOutput.base[index + 1], p.gradOutput.base[index + 2], p.gradOutput.base[index + 3])
            if let z, let ungated, let gz {
                for c in 0..<4 {
                    let zv = z.base[index + c], sz = 1 / (1 + exp1(-zv))
                    gz.base[index + c] = gy[c] * ungated.base[index + c] * sz * (1 + zv * (1 - sz))
                    gy[c] *= zv * sz
                }
            }
            let bt = load(p.B.base, row * 16), ct = load(p.C.base, row * 16)
            let zero = V()
            let previous = t > 0
            lambda.0 = (aNext.0 * lambda.0).addingProduct(ct, gy[0])
            lambda.1 = (aNext.1 * lambda.1).addingProduct(ct, gy[1])
            lambda.2 = (aNext.2 * lambda.2).addingProduct(ct, gy[2])
            lambda.3 = (aNext.3 * lambda.3).addingProduct(ct, gy[3])
            // ∂C_t = Σ_c gy_c h_{t,c};  ∂B_t = Σ_c λ_c Δ_c u_c
            var gC = load(p.gC.base, row * 16)
            gC = gC.addingProduct(history[4 * t], gy[0]).addingProduct(history[4 * t + 1], gy[1])
                .addingProduct(history[4 * t + 2], gy[2]).addingProduct(history[4 * t + 3], gy[3])
            store(gC, p.gC.base, row * 16)
            let du = dt * u
            var gB = load(p.gB.base, row * 16)
            gB = gB.addingProduct(lambda.0, du[0]).addingProduct(lambda.1, du[1]).addingProduct(lambda.2, du[2]).addingProduct(lambda.3, du[3])
            store(gB, p.gB.base, row * 16)
            let a = (decays[4 * t], decays[4 * t + 1], decays[4 * t + 2], decays[4 * t + 3])
            let hp = previous ? (history[4 * t - 4], history[4 * t - 3], history[4 * t - 2], history[4 * t - 1]) : (zero, zero, zero, zero)
            let decayTerm = (lambda.0 * a.0 * hp.0, lambda.1 * a.1 * hp.1, lambda.2 * a.2 * hp.2, lambda.3 * a.3 * hp.3)
            gA.0 = gA.0.addingProduct(decayTerm.0, dt[0])
            gA.1 = gA.1.addingProduct(decayTerm.1, dt[1])
            gA.2 = gA.2.addingProduct(decayTerm.2, dt[2])
            gA.3 = gA.3.addingProduct(decayTerm.3, dt[3])
            let lambdaDotB = SIMD4<Float>(lanesSum(lambda.0 * bt), lanesSum(lambda.1 * bt), lanesSum(lambda.2 * bt), lanesSum(lambda.3 * bt))
            let decayDotA = SIMD4<Float>(lanesSum(decayTerm.0 * aRows.0), lanesSum(decayTerm.1 * aRows.1),
                                         lanesSum(decayTerm.2 * aRows.2), lanesSum(decayTerm.3 * aRows.3))
            let gu = (gy * skip).addingProduct(dt, lambdaDotB)
            let gdelta = decayDotA.addingProduct(u, lambdaDotB)
            for c in 0..<4 {
                p.gu.base[index + c] = gu[c]
                p.gdelta.base[index + c] = gdelta[c]
            }
            gD = gD.addingProduct(gy, u)
            aNext = a
            t -= 1
        }
        let partial = worker * s.channels * 16 + d0 * 16
        store(load(p.partialA.base, partial) + gA.0, p.partialA.base, partial)
        store(load(p.partialA.base, partial + 16) + gA.1, p.partialA.base, partial + 16)
        store(load(p.partialA.base, partial + 32) + gA.2, p.partialA.base, partial + 32)
        store(load(p.partialA.base, partial + 48) + gA.3, p.partialA.base, partial + 48)
        for c in 0..<4 { p.partialD.base[worker * s.channels + d0 + c] += gD[c] }
    }

    // MARK: helpers

    @inline(__always) static func load(_ base: UnsafeMutablePointer<Float>, _ offset: Int) -> SIMD16<Float> {
        UnsafeRawPointer(base + offset).loadUnaligned(as: SIMD16<Float>.self)
    }

    @inline(__always) static func store(_ v: SIMD16<Float>, _ base: UnsafeMutablePointer<Float>, _ offset: Int) {
        UnsafeMutableRawPointer(base + offset).storeBytes(of: v, as: SIMD16<Float>.self)
    }

    /// Pairwise sum of 16 lanes.
    @inline(__always) static func lanesSum(_ v: SIMD16<Float>) -> Float {
        let v8 = v.lowHalf + v.highHalf
        let v4 = v8.lowHalf + v8.highHalf
        let v2 = v4.lowHalf + v4.highHalf
        return v2[0] + v2[1]
    }

    @inline(__always) static func exp1(_ v: Float) -> Float { VectorMath.exp(SIMD16(repeating: v))[0] }

    @inline(__always) static func exp4(_ v: SIMD4<Float>) -> SIMD4<Float> {
        let wide = VectorMath.exp(SIMD16(lowHalf: SIMD8(lowHalf: v, highHalf: v), highHalf: SIMD8(lowHalf: v, highHalf: v)))
        return wide.lowHalf.lowHalf
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
