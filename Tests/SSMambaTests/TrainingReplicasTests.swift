import Foundation
import Randomness
import SSMamba
import Tensors
import XCTest

/// Replicas of a model training side by side in one process (`TrainingReplicas`), on real threads.
final class TrainingReplicasTests: XCTestCase {
    /// Three threads sum buffers of a length that does not split evenly: every buffer ends with
    /// the sums in replica order, bit for bit the same on every replica, for several rounds.
    func testReplicaGroupSumsInReplicaOrderOnEveryReplica() throws {
        let group = ReplicaGroup(replicas: 3)
        let count = 1_001
        var rng = RandomGenerator(seed: 5)
        let rounds = (0..<4).map { _ in (0..<3).map { _ in (0..<count).map { _ in rng.normal(std: 1) } } }
        let results = Results(replicas: 3, rounds: rounds.count)
        let members = (0..<3).map { group.member($0) }
        let threads = (0..<3).map { replica in
            Thread {
                for (round, inputs) in rounds.enumerated() {
                    var values = inputs[replica]
                    do { try values.withUnsafeMutableBufferPointer { try members[replica].sum($0) } } catch { return }
                    results.set(values, replica: replica, round: round)
                }
            }
        }
        threads.forEach { $0.start() }
        XCTAssertTrue(results.waitForAll(timeout: 30), "the replicas did not finish")
        for (round, inputs) in rounds.enumerated() {
            let expected = (0..<count).map { i in (inputs[0][i] + inputs[1][i]) + inputs[2][i] }
            for replica in 0..<3 {
                XCTAssertEqual(results.get(replica: replica, round: round), expected, "round \(round), replica \(replica)")
            }
        }
        XCTAssertEqual(members[0].processes, 3)
    }

    /// Two "processes" of two replicas each (four threads; the processes' group is itself a
    /// replica group here, MPI's in the flows): every buffer ends with the sum of all four, the
    /// same bits everywhere, and each member counts four processes.
    func testReplicasInsideSeveralProcessesSumOverAll() throws {
        let processes = ReplicaGroup(replicas: 2)
        let inside = (0..<2).map { ReplicaGroup(replicas: 2, outer: processes.member($0)) }
        let members = (0..<4).map { inside[$0 / 2].member($0 % 2) }
        XCTAssertEqual(members[3].processes, 4)
        let count = 333
        let inputs: [[Float]] = (0..<4).map { k in
            let scale = Float(k + 1) * 0.25, shift = Float(k)
            return (0..<count).map { i in Float(i) * scale + shift }
        }
        let results = Results(replicas: 4, rounds: 1)
        for k in 0..<4 {
            Thread {
                var values = inputs[k]
                do { try values.withUnsafeMutableBufferPointer { try members[k].sum($0) } } catch { return }
                results.set(values, replica: k, round: 0)
            }.start()
        }
        XCTAssertTrue(results.waitForAll(timeout: 30), "the replicas did not finish")
        let expected: [Float] = (0..<count).map { i in
            let first: Float = inputs[0][i] + inputs[1][i], second: Float = inputs[2][i] + inputs[3][i]
            return first + second
        }
        for k in 0..<4 { XCTAssertEqual(results.get(replica: k, round: 0), expected, "replica \(k % 2) of process \(k / 2)") }
    }

    /// A replica that gives up releases the others: their sums throw instead of waiting forever.
    func testAbandoningTheGroupReleasesTheWaitingReplicas() {
        let group = ReplicaGroup(replicas: 2)
        let member = group.member(0)
        let failed = expectation(description: "the waiting sum throws")
        Thread {
            var values: [Float] = [1, 2]
            do { try values.withUnsafeMutableBufferPointer { try member.sum($0) } } catch is ReplicaGroup.Abandoned { failed.fulfill() } catch {}
        }.start()
        Thread.sleep(forTimeInterval: 0.1)
        group.abandon()
        wait(for: [failed], timeout: 10)
        var values: [Float] = [1]
        XCTAssertThrowsError(try values.withUnsafeMutableBufferPointer { try group.member(1).sum($0) }, "a later sum throws too")
    }

    /// Two and three replicas (one core each, the batch of 6 shared out 3 + 3 and 2 + 2 + 2) train
    /// the model one replica trains on the whole batch: with drop-path, over four steps with two
    /// micro-batches per step, the losses agree to 1e-5 and the weights to 1e-4 relative (only the
    /// order of the sums differs), and every replica holds the same bits as replica 0.
    func testReplicasTrainAsOneModelOnTheWholeBatch() throws {
        var data = RandomGenerator(seed: 31)
        let batches = (0..<8).map { _ in TrainingTests.syntheticBatch(6, using: &data) }
        func train(replicas: Int) throws -> (losses: [Float], replicas: TrainingReplicas<Classifier>) {
            var settings = TrainingSettings(schedule: CosineSchedule(baseRate: 5e-3, warmupSteps: 1, totalSteps: 4))
            settings.accumulationSteps = 2
            let trainers = try (0..<replicas).map { index in
                var rng = RandomGenerator(seed: 30 + UInt64(index))  // other weights: the replicas must take replica 0's
                return Trainer(model: try Classifier(config: TrainingTests.tinyConfig(classes: 3), using: &rng), settings: settings)
            }
            let group = TrainingReplicas(trainers, workersPerReplica: 1)
            let losses = try batches.map { try group.step(images: $0.0, labels: $0.1) }
            return (losses, group)
        }
        let alone = try train(replicas: 1)
        XCTAssertEqual(alone.replicas.main.optimizerStep, 4)
        for count in [2, 3] {
            let shared = try train(replicas: count)
            XCTAssertEqual(shared.replicas.main.optimizerStep, 4)
            for (a, b) in zip(alone.losses, shared.losses) { XCTAssertEqual(a, b, accuracy: 1e-5, "\(count) replicas") }
            for (a, b) in zip(alone.replicas.main.model.parameters, shared.replicas.main.model.parameters) {
                XCTAssertLessThan(GradientCheck.relativeError(b.value, a.value), 1e-4, "\(a.name), \(count) replicas")
            }
            for other in shared.replicas.trainers.dropFirst() {
                for (a, b) in zip(shared.replicas.main.model.parameters, other.model.parameters) {
                    XCTAssertEqual(a.value, b.value, "\(a.name): the replicas must stay identical")
                }
            }
        }
        // The weights moved (the comparison above is not between untouched models).
        var rng = RandomGenerator(seed: 30)
        let untouched = try Classifier(config: TrainingTests.tinyConfig(classes: 3), using: &rng)
        XCTAssertGreaterThan(GradientCheck.relativeError(alone.replicas.main.model.parameters[0].value, untouched.parameters[0].value), 1e-3)
    }

    /// A batch smaller than the replicas leaves one without samples: it still takes the step, and
    /// the result is one model's on that batch.
    func testAReplicaWithoutSamplesStillSteps() throws {
        var data = RandomGenerator(seed: 32)
        let (images, labels) = TrainingTests.syntheticBatch(2, using: &data)
        func train(replicas: Int) throws -> TrainingReplicas<Classifier> {
            let settings = TrainingSettings(schedule: CosineSchedule(baseRate: 5e-3, warmupSteps: 1, totalSteps: 2))
            let trainers = try (0..<replicas).map { _ in
                var rng = RandomGenerator(seed: 33)
                return Trainer(model: try Classifier(config: TrainingTests.tinyConfig(classes: 3), using: &rng), settings: settings)
            }
            let group = TrainingReplicas(trainers)
            try group.step(images: images, labels: labels)
            return group
        }
        let (alone, three) = (try train(replicas: 1), try train(replicas: 3))
        XCTAssertEqual(three.share(0, of: 2).count + three.share(1, of: 2).count + three.share(2, of: 2).count, 2)
        XCTAssertEqual(three.share(0, of: 2).count, 0, "replica 0 has no sample of a batch of 2 shared by 3")
        for trainer in three.trainers {
            XCTAssertEqual(trainer.optimizerStep, 1)
            // Every replica (the empty one included) continues the random draws of one model.
            XCTAssertEqual(trainer.checkpoint(config: trainer.model.config).manifest.randomState,
                           alone.main.checkpoint(config: alone.main.model.config).manifest.randomState)
        }
        for (a, b) in zip(alone.main.model.parameters, three.trainers[2].model.parameters) {
            XCTAssertLessThan(GradientCheck.relativeError(b.value, a.value), 1e-4, a.name)
        }
    }

    /// A loss that is not finite on one replica ends the step on every replica with that error
    /// (no replica waits for it), and no weight changes.
    func testANonFiniteLossOnOneReplicaStopsTheStepEverywhere() throws {
        var data = RandomGenerator(seed: 34)
        var (images, labels) = TrainingTests.syntheticBatch(4, using: &data)
        images[3, 0, 0, 0] = .nan  // in replica 1's share
        let settings = TrainingSettings(schedule: CosineSchedule(baseRate: 5e-3, warmupSteps: 1, totalSteps: 2))
        let trainers = try (0..<2).map { _ in
            var rng = RandomGenerator(seed: 35)
            return Trainer(model: try Classifier(config: TrainingTests.tinyConfig(classes: 3), using: &rng), settings: settings)
        }
        let replicas = TrainingReplicas(trainers)
        let before = trainers[0].model.parameters.map(\.value)
        XCTAssertThrowsError(try replicas.step(images: images, labels: labels)) { error in
            guard case TrainingError.nonFiniteLoss = error else { return XCTFail("expected the replica's nonFiniteLoss, got \(error)") }
        }
        for trainer in trainers {
            XCTAssertEqual(trainer.optimizerStep, 0)
            XCTAssertEqual(trainer.model.parameters.map(\.value), before)
        }
    }

    /// One replica per core, at least one sample each, at most `maximumReplicas`; cores shared out.
    func testPlanSharesTheCores() {
        XCTAssertTrue(TrainingReplicas<Classifier>.plan(batch: 8, cores: 2) == (2, 1))
        XCTAssertTrue(TrainingReplicas<Classifier>.plan(batch: 1, cores: 2) == (1, 2))
        XCTAssertTrue(TrainingReplicas<Classifier>.plan(batch: 32, cores: 1) == (1, 1))
        XCTAssertTrue(TrainingReplicas<Classifier>.plan(batch: 32, cores: 64) == (8, 8))
        XCTAssertTrue(TrainingReplicas<Classifier>.plan(batch: 4, cores: 16) == (4, 4))
        // The copies' own state stays within a quarter of the memory: 630 MB each (R1) on 8 GB.
        let r1 = TrainingReplicas<Classifier>.replicaBytes(parameters: 39_400_000)
        XCTAssertTrue(TrainingReplicas<Classifier>.plan(batch: 32, cores: 16, replicaBytes: r1, memory: 8 << 30) == (3, 5))
        XCTAssertTrue(TrainingReplicas<Classifier>.plan(batch: 32, cores: 16, replicaBytes: r1, memory: 1 << 30) == (1, 16))
        XCTAssertTrue(TrainingReplicas<Classifier>.plan(batch: 32, cores: 16, replicaBytes: r1, memory: 64 << 30) == (8, 2))
        XCTAssertTrue(TrainingReplicas<Classifier>.plan(batch: 32, cores: 16, asked: 6, replicaBytes: r1, memory: 1 << 30) == (6, 2))
    }
}

/// The replicas' summed buffers, written from their threads.
private final class Results: @unchecked Sendable {
    private let condition = NSCondition()
    private var values: [[[Float]?]]
    init(replicas: Int, rounds: Int) { values = Array(repeating: Array(repeating: nil, count: rounds), count: replicas) }
    func set(_ v: [Float], replica: Int, round: Int) {
        condition.lock(); values[replica][round] = v; condition.broadcast(); condition.unlock()
    }
    func get(replica: Int, round: Int) -> [Float]? {
        condition.lock(); defer { condition.unlock() }
        return values[replica][round]
    }
    func waitForAll(timeout: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock(); defer { condition.unlock() }
        while values.contains(where: { $0.contains { $0 == nil } }) {
            if !condition.wait(until: deadline) { return false }
        }
        return true
    }
}
