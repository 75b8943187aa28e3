import Flow
import Foundation
import Metrics
import Plots

/// The pictures a training stage leaves in its folder and lists in the run's report: the loss
/// curve of its train log, and for a classifier the validation curve, the test ROC curves and the
/// test confusion matrix (SVG).
enum ResultPictures {
    /// `loss.svg`: every step's loss from `train_log.csv` and its running mean over `window` steps.
    static func loss(log: URL, into folder: URL, stage: String, title: String, context: StageContext<Never>, window: Int = 50) throws {
        guard let text = try? String(contentsOf: log, encoding: .utf8) else { return }
        let points: [(x: Double, y: Double)] = text.split(separator: "\n").dropFirst().compactMap { row in
            let fields = row.split(separator: ",")
            guard fields.count >= 2, let step = Double(fields[0]), let loss = Double(fields[1]) else { return nil }
            return (step, loss)
        }
        guard !points.isEmpty else { return }
        var mean: [(x: Double, y: Double)] = [], sum = 0.0
        for (i, point) in points.enumerated() {
            sum += point.y
            if i >= window { sum -= points[i - window].y }
            mean.append((point.x, sum / Double(min(i + 1, window))))
        }
        try write(SVGPlot.lines(title: title, xLabel: "step", yLabel: "loss",
                                series: [SVGPlot.Series("loss", points), SVGPlot.Series("mean of \(window)", mean)]),
                  "loss.svg", title: title, folder: folder, stage: stage, context: context)
    }

    /// `validation.svg`: the validation balanced accuracy after each epoch.
    static func validation(_ history: [Double], into folder: URL, stage: String, context: StageContext<Never>) throws {
        guard !history.isEmpty else { return }
        let points = history.enumerated().map { (x: Double($0.offset + 1), y: $0.element) }
        try write(SVGPlot.lines(title: "Validation balanced accuracy", xLabel: "epoch", yLabel: "balanced accuracy",
                                series: [SVGPlot.Series("validation", points)], yRange: 0...1),
                  "validation.svg", title: "validation balanced accuracy per epoch", folder: folder, stage: stage, context: context)
    }

    /// `roc.svg` (one-vs-rest curve per class, with its AUC) and `confusion.svg` of the test tiles.
    static func test(classes: [String], truth: [Int], probabilities: [[Double]], confusion: [[Int]],
                     into folder: URL, stage: String, context: StageContext<Never>) throws {
        var curves: [SVGPlot.Series] = []
        for (k, name) in classes.enumerated() {
            let positive = truth.map { $0 == k }, scores = probabilities.map { $0[k] }
            guard let curve = RankingMetrics.rocCurve(positive: positive, scores: scores),
                  let auc = RankingMetrics.rocAUC(positive: positive, scores: scores) else { continue }
            curves.append(SVGPlot.Series("\(name) (AUC \(String(format: "%.3f", auc)))", curve.map { (x: $0.falsePositiveRate, y: $0.truePositiveRate) }))
        }
        if !curves.isEmpty {
            try write(SVGPlot.lines(title: "ROC on the test tiles (one class against the rest)", xLabel: "false-positive rate",
                                    yLabel: "true-positive rate", series: curves, xRange: 0...1, yRange: 0...1, diagonal: true),
                      "roc.svg", title: "test ROC curves", folder: folder, stage: stage, context: context)
        }
        try write(SVGPlot.confusion(title: "Test confusion matrix", classes: classes, counts: confusion),
                  "confusion.svg", title: "test confusion matrix", folder: folder, stage: stage, context: context)
    }

    private static func write(_ svg: String, _ file: String, title: String, folder: URL, stage: String, context: StageContext<Never>) throws {
        try Data(svg.utf8).write(to: folder.appendingPathComponent(file), options: .atomic)
        context.attach(picture: "\(stage)/\(file)", title: title)
    }
}
