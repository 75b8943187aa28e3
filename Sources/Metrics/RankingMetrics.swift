/// Threshold-free metrics of scores: ROC AUC and average precision.
public enum RankingMetrics {
    /// Binary ROC AUC: the probability that a random positive scores above a random negative,
    /// ties counting one half (the Mann–Whitney U statistic with average ranks). nil when only
    /// one class is present.
    public static func rocAUC(positive: [Bool], scores: [Double]) -> Double? {
        precondition(positive.count == scores.count)
        let positives = positive.filter { $0 }.count, negatives = positive.count - positives
        guard positives > 0, negatives > 0 else { return nil }
        let order = scores.indices.sorted { scores[$0] < scores[$1] }
        var rankSum = 0.0
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && scores[order[j + 1]] == scores[order[i]] { j += 1 }
            let averageRank = Double(i + j) / 2 + 1  // ranks are 1-based
            for k in i...j where positive[order[k]] { rankSum += averageRank }
            i = j + 1
        }
        let u = rankSum - Double(positives) * Double(positives + 1) / 2
        return u / (Double(positives) * Double(negatives))
    }

    /// The ROC curve: (false-positive rate, true-positive rate) at every distinct score taken as
    /// the threshold, from (0, 0) to (1, 1); tied scores move both rates at once. Its trapezoid
    /// area is `rocAUC`. nil when only one class is present.
    public static func rocCurve(positive: [Bool], scores: [Double]) -> [(falsePositiveRate: Double, truePositiveRate: Double)]? {
        precondition(positive.count == scores.count)
        let positives = positive.filter { $0 }.count, negatives = positive.count - positives
        guard positives > 0, negatives > 0 else { return nil }
        let order = scores.indices.sorted { scores[$0] > scores[$1] }
        var curve = [(falsePositiveRate: 0.0, truePositiveRate: 0.0)]
        var (truePositives, falsePositives, i) = (0, 0, 0)
        while i < order.count {
            var j = i
            while j + 1 < order.count && scores[order[j + 1]] == scores[order[i]] { j += 1 }
            for k in i...j { if positive[order[k]] { truePositives += 1 } else { falsePositives += 1 } }
            curve.append((Double(falsePositives) / Double(negatives), Double(truePositives) / Double(positives)))
            i = j + 1
        }
        return curve
    }

    /// Macro one-vs-rest ROC AUC over the classes present (with at least one other class).
    /// `probabilities[i][k]` is item i's score for class k.
    public static func macroRocAUC(truth: [Int], probabilities: [[Double]]) -> Double? {
        let classes = probabilities.first?.count ?? 0
        let aucs = (0..<classes).compactMap { k in rocAUC(positive: truth.map { $0 == k }, scores: probabilities.map { $0[k] }) }
        return aucs.isEmpty ? nil : aucs.reduce(0, +) / Double(aucs.count)
    }

    /// Average precision as scikit-learn defines it: Σₙ (Rₙ − Rₙ₋₁) Pₙ over the distinct score
    /// thresholds from the highest down (tied scores enter together). nil without positives.
    public static func averagePrecision(positive: [Bool], scores: [Double]) -> Double? {
        let totalPositives = positive.filter { $0 }.count
        guard totalPositives > 0 else { return nil }
        let order = scores.indices.sorted { scores[$0] > scores[$1] }
        var truePositives = 0, seen = 0, previousRecall = 0.0, result = 0.0
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && scores[order[j + 1]] == scores[order[i]] { j += 1 }
            for k in i...j where positive[order[k]] { truePositives += 1 }
            seen = j + 1
            let recall = Double(truePositives) / Double(totalPositives), precision = Double(truePositives) / Double(seen)
            result += (recall - previousRecall) * precision
            previousRecall = recall
            i = j + 1
        }
        return result
    }
}
