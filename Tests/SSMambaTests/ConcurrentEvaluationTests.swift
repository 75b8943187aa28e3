import Foundation
import Randomness
import SSMamba
import Tensors
import XCTest

/// One classifier serves several threads at once in evaluation: its evaluation forward stores
/// nothing in the model, so concurrent `predict`s give exactly the serial results, and a training
/// step afterwards is unchanged by them.
final class ConcurrentEvaluationTests: XCTestCase {
    /// Four threads, each predicting its own batch 5 times, against one thread's answers.
    func check(_ config: ModelConfiguration, side: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        var rng = RandomGenerator(seed: 11)
        let model = try Classifier(config: config, using: &rng)
        let batches = (0..<4).map { _ in Tensor.normal([3, 3, side, side], using: &rng) }
        let serial = batches.map { model.predict($0).scalars }
        final class Results: @unchecked Sendable {
            let lock = NSLock()
            var mismatches = 0
        }
        struct Shared: @unchecked Sendable { let model: Classifier; let batches: [Tensor]; let serial: [[Float]] }
        let shared = Shared(model: model, batches: batches, serial: serial), results = Results()
        DispatchQueue.concurrentPerform(iterations: 4) { thread in
            for _ in 0..<5 where shared.model.predict(shared.batches[thread]).scalars != shared.serial[thread] {
                results.lock.withLock { results.mismatches += 1 }
            }
        }
        XCTAssertEqual(results.mismatches, 0, "concurrent evaluation forwards differ from serial ones", file: file, line: line)

        // A training forward and backward after them sees no activations of theirs.
        let (images, labels) = (batches[0], [0, 1, 0])
        func gradients(_ model: Classifier) -> [Float] {
            var step = RandomGenerator(seed: 5)
            let logits = model.forward(images, training: true, using: &step)
            let (_, g) = CrossEntropy.loss(logits: logits, labels: labels)
            model.parameters.forEach { $0.gradient = Tensor(zeros: $0.value.shape) }
            model.backward(g)
            return model.parameters.flatMap { $0.gradient.scalars }
        }
        var fresh = RandomGenerator(seed: 11)
        let untouched = try Classifier(config: config, using: &fresh)
        XCTAssertEqual(gradients(model), gradients(untouched), file: file, line: line)
    }

    func testPlainLayout() throws {
        var config = TrainingTests.tinyConfig(classes: 2)  // with drop-path, so evaluation must skip it
        config.localPerDirection = true
        config.merge = .softmax
        config.mlpRatio = 2
        try check(config, side: config.imageSize)
    }

    func testHierarchicalLayout() throws {
        var config = HierarchicalTests.tinyHierarchical(classes: 2)
        config.dropPathRate = 0.1
        try check(config, side: config.imageSize)
    }
}
