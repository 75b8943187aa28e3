import Dispatch

/// Loops that apply a 16-lane function over buffers of any length, the tail included.
///
/// The tail (fewer than 16 elements) is padded with zeros, computed as one vector, and only its
/// valid lanes are stored, so every kernel is exact for any length, including 0.
enum SIMDLoops {
    typealias Vector = SIMD16<Float>

    @inline(__always)
    static func load(_ base: UnsafePointer<Float>, _ index: Int, _ available: Int) -> Vector {
        if available >= 16 {
            return UnsafeRawPointer(base + index).loadUnaligned(as: Vector.self)
        }
        var vector = Vector()
        for lane in 0..<available { vector[lane] = base[index + lane] }
        return vector
    }

    @inline(__always)
    static func store(_ vector: Vector, _ base: UnsafeMutablePointer<Float>, _ index: Int, _ available: Int) {
        if available >= 16 {
            UnsafeMutableRawPointer(base + index).storeBytes(of: vector, as: Vector.self)
            return
        }
        for lane in 0..<available { base[index + lane] = vector[lane] }
    }

    /// Maps of at least this many elements are split over `BLAS.threads` Dispatch workers (the
    /// Tensors module's one thread setting): below it, waking a worker costs more than it saves.
    static let parallelThreshold = 1 << 16

    /// Calls `body(start, end)` on disjoint ranges covering 0..<count, each starting at a
    /// multiple of 16; on several workers when `count` reaches `parallelThreshold`.
    @inline(__always)
    static func split(_ count: Int, _ body: @Sendable (Int, Int) -> Void) {
        let workers = count >= parallelThreshold ? BLAS.threads : 1
        if workers <= 1 {
            body(0, count)
            return
        }
        let vectors = (count + 15) / 16
        DispatchQueue.concurrentPerform(iterations: workers) { part in
            body(Swift.min(count, vectors * part / workers * 16), Swift.min(count, vectors * (part + 1) / workers * 16))
        }
    }

    /// out[i] = f(a[i]); `out` may alias `a`.
    @inline(__always)
    static func map(_ a: UnsafeBufferPointer<Float>, _ out: UnsafeMutableBufferPointer<Float>,
                    _ f: @Sendable (Vector) -> Vector) {
        precondition(a.count == out.count, "length mismatch: \(a.count) vs \(out.count)")
        guard let pa = a.baseAddress, let po = out.baseAddress else { return }
        let (sa, so) = (SharedPointer(pa), SharedPointer(po))
        split(a.count) { start, end in
            var i = start
            while i < end {
                let n = end - i
                store(f(load(sa.base, i, n)), so.base, i, n)
                i += 16
            }
        }
    }

    /// out[i] = f(a[i], b[i]); `out` may alias either input.
    @inline(__always)
    static func map(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>,
                    _ out: UnsafeMutableBufferPointer<Float>, _ f: @Sendable (Vector, Vector) -> Vector) {
        precondition(a.count == out.count && b.count == out.count,
                     "length mismatch: \(a.count), \(b.count) vs \(out.count)")
        guard let pa = a.baseAddress, let pb = b.baseAddress, let po = out.baseAddress else { return }
        let (sa, sb, so) = (SharedPointer(pa), SharedPointer(pb), SharedPointer(po))
        split(a.count) { start, end in
            var i = start
            while i < end {
                let n = end - i
                store(f(load(sa.base, i, n), load(sb.base, i, n)), so.base, i, n)
                i += 16
            }
        }
    }

    /// Elements summed in Float per block; block totals are added in Double, so the rounding
    /// error stays near Float's epsilon however long the buffer.
    static let sumBlock = 4_096

    /// Σ f(a[i]): four independent 16-lane accumulators per block, pairwise lane reduction, block
    /// totals in Double. Padded tail lanes are masked out, so f(0) may be anything.
    @inline(__always)
    static func sum(_ a: UnsafeBufferPointer<Float>, _ f: (Vector) -> Vector) -> Float {
        guard let pa = a.baseAddress else { return 0 }
        let n = a.count
        var total: Double = 0
        var blockStart = 0
        while blockStart < n {
            let blockEnd = Swift.min(n, blockStart + sumBlock)
            var acc0 = Vector(), acc1 = Vector(), acc2 = Vector(), acc3 = Vector()
            var i = blockStart
            while i + 64 <= blockEnd {
                acc0 += f(load(pa, i, 16))
                acc1 += f(load(pa, i + 16, 16))
                acc2 += f(load(pa, i + 32, 16))
                acc3 += f(load(pa, i + 48, 16))
                i += 64
            }
            while i + 16 <= blockEnd {
                acc0 += f(load(pa, i, 16))
                i += 16
            }
            if i < blockEnd {
                var tail = f(load(pa, i, blockEnd - i))
                tail.replace(with: 0, where: laneIndices .>= Int32(blockEnd - i))
                acc1 += tail
            }
            total += Double(horizontalSum((acc0 + acc1) + (acc2 + acc3)))
            blockStart = blockEnd
        }
        return Float(total)
    }

    static let laneIndices = SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)

    /// Σ a[i]·b[i] with four independent vector accumulators.
    @inline(__always)
    static func dot(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>) -> Float {
        precondition(a.count == b.count, "length mismatch: \(a.count) vs \(b.count)")
        guard let pa = a.baseAddress, let pb = b.baseAddress else { return 0 }
        var acc0 = Vector(), acc1 = Vector(), acc2 = Vector(), acc3 = Vector()
        var i = 0
        let n = a.count
        while i + 64 <= n {
            acc0 = acc0.addingProduct(load(pa, i, 16), load(pb, i, 16))
            acc1 = acc1.addingProduct(load(pa, i + 16, 16), load(pb, i + 16, 16))
            acc2 = acc2.addingProduct(load(pa, i + 32, 16), load(pb, i + 32, 16))
            acc3 = acc3.addingProduct(load(pa, i + 48, 16), load(pb, i + 48, 16))
            i += 64
        }
        while i < n {
            acc0 = acc0.addingProduct(load(pa, i, n - i), load(pb, i, n - i))
            i += 16
        }
        return horizontalSum((acc0 + acc1) + (acc2 + acc3))
    }

    /// Pairwise lane reduction (`SIMD.sum()` is a strictly ordered chain).
    @inline(__always)
    static func horizontalSum(_ v: Vector) -> Float {
        let v8 = v.lowHalf + v.highHalf
        let v4 = v8.lowHalf + v8.highHalf
        let v2 = v4.lowHalf + v4.highHalf
        return v2[0] + v2[1]
    }

    /// Largest element (−∞ for an empty buffer).
    @inline(__always)
    static func max(_ a: UnsafeBufferPointer<Float>) -> Float {
        guard let pa = a.baseAddress, a.count > 0 else { return -.infinity }
        var best = Vector(repeating: -.infinity)
        var i = 0
        while i + 16 <= a.count {
            let v = load(pa, i, 16)
            best.replace(with: v, where: v .> best)  // pointwiseMax is scalarised
            i += 16
        }
        var result = best.max()
        while i < a.count { result = Swift.max(result, pa[i]); i += 1 }
        return result
    }
}
