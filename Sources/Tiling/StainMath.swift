import Foundation

/// Small numeric helpers shared by the stain normalizers.
public enum StainMath {
    /// The p-th percentile (0…100) of `values` with linear interpolation between order statistics
    /// (numpy's default), in O(n); may reorder `values`.
    public static func percentile(_ values: inout [Double], _ p: Double) -> Double {
        precondition(!values.isEmpty)
        let position = p / 100 * Double(values.count - 1)
        let low = Int(position.rounded(.down))
        let fraction = position - Double(low)
        let (a, b) = orderStatistics(&values, low)
        guard fraction > 0, let b else { return a }
        return a + fraction * (b - a)
    }

    /// The same without touching `values` (a copy is made only when the tail shortcut fails).
    public static func percentile(of values: [Double], _ p: Double) -> Double {
        precondition(!values.isEmpty)
        let position = p / 100 * Double(values.count - 1)
        let low = Int(position.rounded(.down)), fraction = position - Double(low)
        let (a, b): (Double, Double?)
        if values.count > 4096, let found = tail(values, low) {
            (a, b) = found
        } else {
            var copy = values
            (a, b) = orderStatistics(&copy, low)
        }
        guard fraction > 0, let b else { return a }
        return a + fraction * (b - a)
    }

    /// The k-th and (k+1)-th smallest values (the second nil when k is the last). Near either end
    /// (the 1st and 99th percentiles the normalizers need) they are found among the few values
    /// beyond a threshold estimated from a sample: one pass, then a selection on ~2 % of the data.
    static func orderStatistics(_ values: inout [Double], _ k: Int) -> (Double, Double?) {
        let n = values.count
        if n > 4096, let found = tail(values, k) { return found }
        let a = select(&values, k)
        guard k + 1 < n else { return (a, nil) }
        var b = Double.infinity
        for i in (k + 1)..<n where values[i] < b { b = values[i] }  // after selection, the rest is above
        return (a, b)
    }

    /// `orderStatistics` by the tail shortcut, or nil when it does not apply (exact either way).
    static func tail(_ values: [Double], _ k: Int) -> (Double, Double?)? {
        let n = values.count
        let upper = k > n / 2
        let needed = upper ? n - k : k + 2  // values beyond the threshold that must be kept
        guard needed <= n / 20 else { return nil }
        var sample = stride(from: 0, to: n, by: max(1, n / 1024)).map { values[$0] }
        let share = min(0.5, 2.5 * Double(needed) / Double(n) + 4 / Double(sample.count))
        let threshold = select(&sample, upper ? max(0, Int(Double(sample.count) * (1 - share))) : min(sample.count - 1, Int(Double(sample.count) * share)))
        var kept: [Double] = []
        kept.reserveCapacity(3 * needed)
        if upper { for v in values where v >= threshold { kept.append(v) } } else { for v in values where v <= threshold { kept.append(v) } }
        // Every value not kept lies strictly on the other side of the threshold, so ranks shift by
        // the number dropped; the kept set must hold both order statistics.
        let rank = upper ? k - (n - kept.count) : k
        guard rank >= 0, rank + 1 < kept.count || (rank < kept.count && k + 1 == n) else { return nil }
        if !upper && rank + 1 >= kept.count { return nil }
        let a = select(&kept, rank)
        guard rank + 1 < kept.count else { return (a, nil) }
        var b = Double.infinity
        for i in (rank + 1)..<kept.count where kept[i] < b { b = kept[i] }
        return (a, b)
    }

    /// Places the k-th smallest element at index k (smaller before, larger after) and returns it.
    static func select(_ a: inout [Double], _ k: Int) -> Double {
        var left = 0, right = a.count - 1
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        while left < right {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let pivot = a[left + Int((state >> 33) % UInt64(right - left + 1))]
            var i = left, j = right
            while i <= j {
                while a[i] < pivot { i += 1 }
                while a[j] > pivot { j -= 1 }
                if i <= j { a.swapAt(i, j); i += 1; j -= 1 }
            }
            if k <= j { right = j } else if k >= i { left = i } else { return a[k] }
        }
        return a[k]
    }

    /// Eigenvalues (ascending) and unit eigenvectors (columns, matching order) of a symmetric 3×3
    /// matrix, by cyclic Jacobi rotations.
    static func symmetricEigen(_ m: [[Double]]) -> (values: [Double], vectors: [[Double]]) {
        var a = m
        var v: [[Double]] = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
        for _ in 0..<50 {
            let off = a[0][1] * a[0][1] + a[0][2] * a[0][2] + a[1][2] * a[1][2]
            if off < 1e-30 { break }
            for (p, q) in [(0, 1), (0, 2), (1, 2)] where abs(a[p][q]) > 1e-300 {
                let theta = (a[q][q] - a[p][p]) / (2 * a[p][q])
                let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                let c = 1 / (t * t + 1).squareRoot(), s = t * c
                for k in 0..<3 {  // A ← A·J
                    let akp = a[k][p], akq = a[k][q]
                    a[k][p] = c * akp - s * akq; a[k][q] = s * akp + c * akq
                }
                for k in 0..<3 {  // A ← Jᵀ·A
                    let apk = a[p][k], aqk = a[q][k]
                    a[p][k] = c * apk - s * aqk; a[q][k] = s * apk + c * aqk
                }
                for k in 0..<3 {
                    let vkp = v[k][p], vkq = v[k][q]
                    v[k][p] = c * vkp - s * vkq; v[k][q] = s * vkp + c * vkq
                }
            }
        }
        let order = [0, 1, 2].sorted { a[$0][$0] < a[$1][$1] }
        return (order.map { a[$0][$0] }, (0..<3).map { row in order.map { v[row][$0] } })
    }

    /// G = M·Mᵀ of two stain vectors (rows of 3): (g₀₀, g₀₁, g₁₁).
    static func gram(_ m: [[Double]]) -> (Double, Double, Double) {
        func dot(_ a: [Double], _ b: [Double]) -> Double { a[0] * b[0] + a[1] * b[1] + a[2] * b[2] }
        return (dot(m[0], m[0]), dot(m[0], m[1]), dot(m[1], m[1]))
    }

    /// The non-negative lasso with two atoms, solved exactly:
    /// argmin_{α ≥ 0} ½‖x − Dα‖² + λ(α₁ + α₂), given G = DᵀD and b = Dᵀx.
    /// The problem is convex, so the best of the feasible active-set candidates is the optimum.
    @inline(__always)
    public static func nonNegativeLasso2(g00: Double, g01: Double, g11: Double, b0: Double, b1: Double, lambda: Double) -> (Double, Double) {
        func objective(_ a0: Double, _ a1: Double) -> Double {
            0.5 * (g00 * a0 * a0 + 2 * g01 * a0 * a1 + g11 * a1 * a1) - b0 * a0 - b1 * a1 + lambda * (a0 + a1)
        }
        var best = (0.0, 0.0), bestValue = 0.0
        let det = g00 * g11 - g01 * g01
        if det > 1e-12 {
            let r0 = b0 - lambda, r1 = b1 - lambda
            let a0 = (g11 * r0 - g01 * r1) / det, a1 = (g00 * r1 - g01 * r0) / det
            if a0 > 0 && a1 > 0 { return (a0, a1) }  // interior optimum of a convex problem
        }
        if g00 > 0 {
            let a0 = (b0 - lambda) / g00
            if a0 > 0 { let value = objective(a0, 0); if value < bestValue { (best, bestValue) = ((a0, 0), value) } }
        }
        if g11 > 0 {
            let a1 = (b1 - lambda) / g11
            if a1 > 0 { let value = objective(0, a1); if value < bestValue { (best, bestValue) = ((0, a1), value) } }
        }
        return best
    }
}
