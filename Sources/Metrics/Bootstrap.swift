import Randomness

/// Percentile bootstrap confidence intervals.
public enum Bootstrap {
    public struct Interval: Sendable, Codable, Equatable {
        public let estimate: Double
        public let lower: Double
        public let upper: Double
        /// Resamples on which the metric was defined (e.g. both classes present for an AUC).
        public let resamples: Int
    }

    /// The metric on the data and its `level` (e.g. 0.95) percentile interval over `resamples`
    /// resamples of the n items with replacement; deterministic for a seed. nil when the metric
    /// is undefined on the data itself.
    public static func interval(count n: Int, resamples: Int = 1000, level: Double = 0.95, seed: UInt64 = 0,
                                metric: ([Int]) -> Double?) -> Interval? {
        guard let estimate = metric(Array(0..<n)), n > 0 else { return nil }
        var rng = RandomGenerator(seed: seed)
        var values: [Double] = []
        values.reserveCapacity(resamples)
        for _ in 0..<resamples {
            let sample = (0..<n).map { _ in rng.integer(below: n) }
            if let value = metric(sample) { values.append(value) }
        }
        guard !values.isEmpty else { return Interval(estimate: estimate, lower: estimate, upper: estimate, resamples: 0) }
        values.sort()
        func quantile(_ q: Double) -> Double {
            let position = q * Double(values.count - 1)
            let low = Int(position), fraction = position - Double(low)
            return low + 1 < values.count ? values[low] + fraction * (values[low + 1] - values[low]) : values[low]
        }
        let tail = (1 - level) / 2
        return Interval(estimate: estimate, lower: quantile(tail), upper: quantile(1 - tail), resamples: values.count)
    }
}
