/// Metrics of survival predictions.
public enum SurvivalMetrics {
    /// Harrell's concordance index of risk scores (higher risk = earlier event).
    ///
    /// A pair (i, j) is comparable when the earlier time ends in an event (tᵢ < tⱼ, eventᵢ), or
    /// when the times are equal and only i had the event (j was still alive then). A comparable
    /// pair is concordant when riskᵢ > riskⱼ; tied risks count one half. nil without comparable pairs.
    public static func concordanceIndex(times: [Double], events: [Bool], risks: [Double]) -> Double? {
        precondition(times.count == events.count && times.count == risks.count)
        var concordant = 0.0, comparable = 0.0
        for i in times.indices where events[i] {
            for j in times.indices where j != i {
                guard times[i] < times[j] || (times[i] == times[j] && !events[j]) else { continue }
                comparable += 1
                if risks[i] > risks[j] { concordant += 1 } else if risks[i] == risks[j] { concordant += 0.5 }
            }
        }
        return comparable > 0 ? concordant / comparable : nil
    }
}
