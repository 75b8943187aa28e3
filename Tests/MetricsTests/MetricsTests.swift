import Foundation
import Metrics
import XCTest

/// Metrics against scikit-learn and lifelines (fixtures from scripts/reference/make_metric_fixtures.py).
final class MetricsTests: XCTestCase {
    struct Case: Decodable {
        let truth: [Int], predicted: [Int], probabilities: [[Double]]
        let binary_truth: [Bool], binary_score: [Double]
        let times: [Double], events: [Bool], risks: [Double]
        let accuracy: Double, balanced_accuracy: Double, macro_f1: Double
        let precision: [Double], recall: [Double], confusion: [[Int]]
        let binary_auc: Double, macro_auc: Double, average_precision: Double, c_index: Double
    }

    func cases() throws -> [Case] {
        struct File: Decodable { let cases: [Case] }
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/metrics.json")
        return try JSONDecoder().decode(File.self, from: Data(contentsOf: url)).cases
    }

    func testClassificationMetricsMatchScikitLearn() throws {
        for c in try cases() {
            let m = ClassificationMetrics(truth: c.truth, predicted: c.predicted, classes: 3)
            XCTAssertEqual(m.confusion, c.confusion)
            XCTAssertEqual(m.accuracy, c.accuracy, accuracy: 1e-12)
            XCTAssertEqual(m.balancedAccuracy, c.balanced_accuracy, accuracy: 1e-12)
            XCTAssertEqual(m.macroF1, c.macro_f1, accuracy: 1e-12)
            for k in 0..<3 {
                XCTAssertEqual(m.precision[k], c.precision[k], accuracy: 1e-12)
                XCTAssertEqual(m.recall[k], c.recall[k], accuracy: 1e-12)
            }
        }
    }

    func testRankingMetricsMatchScikitLearnWithTies() throws {
        for c in try cases() {
            XCTAssertEqual(try XCTUnwrap(RankingMetrics.rocAUC(positive: c.binary_truth, scores: c.binary_score)), c.binary_auc, accuracy: 1e-12)
            XCTAssertEqual(try XCTUnwrap(RankingMetrics.macroRocAUC(truth: c.truth, probabilities: c.probabilities)), c.macro_auc, accuracy: 1e-12)
            XCTAssertEqual(try XCTUnwrap(RankingMetrics.averagePrecision(positive: c.binary_truth, scores: c.binary_score)), c.average_precision, accuracy: 1e-12)
        }
        XCTAssertNil(RankingMetrics.rocAUC(positive: [true, true], scores: [0.1, 0.2]), "undefined with one class")
        XCTAssertEqual(RankingMetrics.rocAUC(positive: [true, false], scores: [0.5, 0.5]), 0.5)
    }

    func testConcordanceIndexMatchesLifelines() throws {
        for c in try cases() {
            XCTAssertEqual(try XCTUnwrap(SurvivalMetrics.concordanceIndex(times: c.times, events: c.events, risks: c.risks)), c.c_index, accuracy: 1e-12)
        }
        XCTAssertEqual(SurvivalMetrics.concordanceIndex(times: [1, 2, 3], events: [true, true, true], risks: [3, 2, 1]), 1)
        XCTAssertNil(SurvivalMetrics.concordanceIndex(times: [1, 2], events: [false, false], risks: [1, 2]))
    }

    func testBootstrapIntervalCoversTheEstimateAndIsDeterministic() throws {
        let c = try cases()[2]
        let metric: ([Int]) -> Double? = { sample in
            RankingMetrics.rocAUC(positive: sample.map { c.binary_truth[$0] }, scores: sample.map { c.binary_score[$0] })
        }
        let a = try XCTUnwrap(Bootstrap.interval(count: c.truth.count, resamples: 500, seed: 3, metric: metric))
        let b = try XCTUnwrap(Bootstrap.interval(count: c.truth.count, resamples: 500, seed: 3, metric: metric))
        XCTAssertEqual(a, b)
        XCTAssertEqual(a.estimate, c.binary_auc, accuracy: 1e-12)
        XCTAssertLessThan(a.lower, a.estimate)
        XCTAssertGreaterThan(a.upper, a.estimate)
        XCTAssertLessThan(a.upper - a.lower, 0.5)
        XCTAssertEqual(a.resamples, 500)
        // A constant metric has a zero-width interval.
        let constant = try XCTUnwrap(Bootstrap.interval(count: 10, metric: { _ in 0.7 }))
        XCTAssertEqual(constant.lower, 0.7)
        XCTAssertEqual(constant.upper, 0.7)
    }
}
