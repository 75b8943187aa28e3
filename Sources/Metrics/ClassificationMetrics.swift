/// Metrics of a K-class classifier from true labels and predicted labels (0…K−1).
///
/// Definitions follow scikit-learn: precision = TP / (TP + FP), recall = TP / (TP + FN), both 0
/// when undefined; F1 = 2PR / (P + R) (0 when P + R = 0); balanced accuracy = mean recall over
/// classes present in the truth; macro-F1 = mean F1 over all K classes.
public struct ClassificationMetrics: Sendable, Codable, Equatable {
    public let classes: Int
    /// confusion[t][p]: items of true class t predicted as p.
    public let confusion: [[Int]]
    public let accuracy: Double
    public let balancedAccuracy: Double
    public let macroF1: Double
    public let precision: [Double]
    public let recall: [Double]
    public let f1: [Double]

    public init(truth: [Int], predicted: [Int], classes: Int) {
        precondition(truth.count == predicted.count, "one prediction per item")
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: classes), count: classes)
        for (t, p) in zip(truth, predicted) { confusion[t][p] += 1 }
        let correct = (0..<classes).reduce(0) { $0 + confusion[$1][$1] }
        var precision = [Double](), recall = [Double](), f1 = [Double]()
        for k in 0..<classes {
            let tp = Double(confusion[k][k])
            let predictedK = Double((0..<classes).reduce(0) { $0 + confusion[$1][k] })
            let actualK = Double(confusion[k].reduce(0, +))
            let p = predictedK > 0 ? tp / predictedK : 0, r = actualK > 0 ? tp / actualK : 0
            precision.append(p); recall.append(r); f1.append(p + r > 0 ? 2 * p * r / (p + r) : 0)
        }
        let present = (0..<classes).filter { confusion[$0].reduce(0, +) > 0 }
        self.classes = classes
        self.confusion = confusion
        self.accuracy = truth.isEmpty ? 0 : Double(correct) / Double(truth.count)
        self.balancedAccuracy = present.isEmpty ? 0 : present.reduce(0.0) { $0 + recall[$1] } / Double(present.count)
        self.macroF1 = classes == 0 ? 0 : f1.reduce(0, +) / Double(classes)
        self.precision = precision
        self.recall = recall
        self.f1 = f1
    }
}
