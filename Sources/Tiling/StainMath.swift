import Foundation

/// Small numeric helpers shared by the stain normalizers.
public enum StainMath {
    /// The p-th percentile (0…100) of `values` with linear interpolation between order statistics
    /// (numpy's default), by selection in O(n); reorders `values`.
    static func percentile(_ values: inout [Double], _ p: Double) -> Double {
        precondition(!values.isEmpty)
        let position = p / 100 * Double(values.count - 1)
        let low = Int(position.rounded(.down))
        let fraction = position - Double(low)
        let a = select(&values, low)
        guard fraction > 0, low + 1 < values.count else { return a }
        // The next order statistic is the minimum of what lies above `low` after selection.
        var b = Double.infinity
        for i in (low + 1)..<values.count where values[i] < b { b = values[i] }
        return a + fraction * (b - a)
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
