import Foundation
import Randomness
import SSMamba
import Tensors
import XCTest

final class AttentionMILTests: XCTestCase {
    func testGradientsMatchFiniteDifferences() {
        var rng = RandomGenerator(seed: 8)
        let mil = AttentionMIL(dim: 5, hidden: 4, outputs: 3, using: &rng)
        for p in mil.parameters { p.value = Tensor.normal(p.value.shape, std: 0.5, using: &rng) }
        GradientCheck.check(input: Tensor.normal([6, 5], using: &rng), parameters: mil.parameters,
                            forward: mil.forward, backward: mil.backward)
        XCTAssertEqual(mil.lastAttention.reduce(0, +), 1, accuracy: 1e-5)
    }

    func testCoxGradientMatchesFiniteDifferences() throws {
        var rng = RandomGenerator(seed: 2)
        let n = 12
        let risks = (0..<n).map { _ in Double(rng.normal()) }
        let times = (0..<n).map { Double($0 % 5 + 1) }  // tied times
        let events = (0..<n).map { $0 % 3 != 0 }
        let (_, gradient) = try XCTUnwrap(CoxLoss.loss(risks: risks, times: times, events: events))
        for k in 0..<n {
            var plus = risks, minus = risks
            plus[k] += 1e-5; minus[k] -= 1e-5
            let numeric = (CoxLoss.loss(risks: plus, times: times, events: events)!.loss - CoxLoss.loss(risks: minus, times: times, events: events)!.loss) / 2e-5
            XCTAssertEqual(gradient[k], numeric, accuracy: 1e-6)
        }
        XCTAssertNil(CoxLoss.loss(risks: [1, 2], times: [1, 2], events: [false, false]))
    }

    /// Bags are positive when any tile carries the signal: ABMIL learns it and attends to that tile.
    func testLearnsWhichBagsHoldAPositiveTile() {
        var rng = RandomGenerator(seed: 3)
        let mil = AttentionMIL(dim: 8, hidden: 8, outputs: 2, using: &rng)
        let optimizer = AdamW(settings: AdamW.Settings())
        func bag(positive: Bool) -> (Tensor, Int?) {
            var t = Tensor.normal([10, 8], std: 0.3, using: &rng)
            var index: Int? = nil
            if positive { index = rng.integer(below: 10); t.scalars[index! * 8] += 2 }
            return (t, index)
        }
        for _ in 0..<300 {
            let positive = rng.integer(below: 2) == 1
            let (x, _) = bag(positive: positive)
            mil.zeroGradients()
            let (_, g) = CrossEntropy.loss(logits: mil.forward(x), labels: [positive ? 1 : 0])
            mil.backward(g)
            optimizer.update(mil.parameters, learningRate: 1e-2)
        }
        var correct = 0, attended = 0
        for i in 0..<100 {
            let (x, index) = bag(positive: i % 2 == 0)
            let logits = mil.forward(x)
            if (logits.scalars[1] > logits.scalars[0]) == (i % 2 == 0) { correct += 1 }
            if let index, mil.lastAttention.indices.max(by: { mil.lastAttention[$0] < mil.lastAttention[$1] }) == index { attended += 1 }
        }
        XCTAssertGreaterThanOrEqual(correct, 90)
        XCTAssertGreaterThanOrEqual(attended, 40, "the positive tile gets the most attention in most positive bags")
    }
}
