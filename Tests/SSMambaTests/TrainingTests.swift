import Foundation
import Randomness
import SSMamba
import Tensors
import XCTest

final class TrainingTests: XCTestCase {
    func fixture(_ name: String) throws -> SafeTensorsFile {
        try SafeTensorsFile(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/\(name)"))
    }

    func testAdamWMatchesPyTorch() throws {
        let file = try fixture("adamw_steps.safetensors")
        let weight = Parameter("weight", try file.tensor("initial.weight"), decays: true)
        let bias = Parameter("bias", try file.tensor("initial.bias"), decays: false)
        var settings = AdamW.Settings()
        settings.beta2 = 0.95
        settings.weightDecay = 0.05
        let optimizer = AdamW(settings: settings)
        for (step, lr) in [Float(0.01), 0.02, 0.005].enumerated() {
            weight.gradient = try file.tensor("grad.\(step).weight")
            bias.gradient = try file.tensor("grad.\(step).bias")
            optimizer.update([weight, bias], learningRate: lr)
        }
        XCTAssertLessThan(GradientCheck.relativeError(weight.value, try file.tensor("final.weight")), 1e-6)
        XCTAssertLessThan(GradientCheck.relativeError(bias.value, try file.tensor("final.bias")), 1e-6)
        XCTAssertEqual(optimizer.step, 3)
    }

    func testCosineScheduleWithWarmup() {
        let schedule = CosineSchedule(baseRate: 1e-3, minimumRate: 1e-5, warmupSteps: 10, totalSteps: 110)
        XCTAssertEqual(schedule.rate(atStep: 0), 1e-4, accuracy: 1e-9)
        XCTAssertEqual(schedule.rate(atStep: 9), 1e-3, accuracy: 1e-9)
        XCTAssertEqual(schedule.rate(atStep: 10), 1e-3, accuracy: 1e-9)
        XCTAssertEqual(schedule.rate(atStep: 60), (1e-3 + 1e-5) / 2, accuracy: 1e-8)
        XCTAssertEqual(schedule.rate(atStep: 110), 1e-5, accuracy: 1e-9)
        XCTAssertEqual(schedule.rate(atStep: 500), 1e-5, accuracy: 1e-9)
    }

    func testGlobalNormClipping() {
        let a = Parameter("a", Tensor(zeros: [2]), decays: true), b = Parameter("b", Tensor(zeros: [1]), decays: true)
        a.gradient = Tensor(shape: [2], scalars: [3, 0])
        b.gradient = Tensor(shape: [1], scalars: [4])
        XCTAssertEqual(clipGradients([a, b], maxNorm: 10), 5, accuracy: 1e-6)
        XCTAssertEqual(a.gradient.scalars, [3, 0])
        XCTAssertEqual(clipGradients([a, b], maxNorm: 1), 5, accuracy: 1e-6)
        XCTAssertEqual(a.gradient.scalars[0], 0.6, accuracy: 1e-5)
        XCTAssertEqual(b.gradient.scalars[0], 0.8, accuracy: 1e-5)
    }

    /// A tiny configuration that trains in a second or two on a CPU.
    static func tinyConfig(classes: Int) -> ModelConfiguration {
        var config = ModelConfiguration.tinyTest(classes: classes)
        config.dropPathRate = 0.1
        return config
    }

    /// Synthetic images with a known answer: class 0 horizontal stripes, 1 vertical stripes,
    /// 2 a bright centre; random phase, contrast and noise.
    static func syntheticBatch(_ size: Int, side: Int = 16, using rng: inout RandomGenerator) -> (Tensor, [Int]) {
        var images = Tensor(zeros: [size, 3, side, side])
        var labels: [Int] = []
        for b in 0..<size {
            let label = rng.integer(below: 3)
            labels.append(label)
            let phase = rng.integer(below: 4), contrast = rng.uniform(0.5, 1.5)
            for c in 0..<3 { for y in 0..<side { for x in 0..<side {
                var v: Float
                switch label {
                case 0: v = (y + phase) % 4 < 2 ? 1 : -1
                case 1: v = (x + phase) % 4 < 2 ? 1 : -1
                default: v = abs(y - side / 2) < side / 4 && abs(x - side / 2) < side / 4 ? 1 : -1
                }
                images[b, c, y, x] = v * contrast + rng.normal(std: 0.5)
            } } }
        }
        return (images, labels)
    }

    /// Trains a fresh model of `config` on synthetic batches of 16; returns the first and last
    /// training losses and the accuracy on 96 held-out images.
    static func learnSyntheticTask(_ config: ModelConfiguration, side: Int = 16, steps: Int, rate: Float, seed: UInt64,
                                   precision: GEMMPrecision = .float32) throws -> (first: Float, last: Float, accuracy: Double) {
        let run = try trainSyntheticTask(config, side: side, steps: steps, rate: rate, seed: seed, precision: precision)
        return (run.losses[0], run.losses[steps - 1], run.accuracy)
    }

    /// Every step's loss and the held-out accuracy of a classifier trained on the synthetic task.
    static func trainSyntheticTask(_ config: ModelConfiguration, side: Int = 16, steps: Int, rate: Float, seed: UInt64,
                                   precision: GEMMPrecision = .float32) throws -> (losses: [Float], accuracy: Double) {
        var rng = RandomGenerator(seed: seed)
        let model = try Classifier(config: config, using: &rng)
        var settings = TrainingSettings(schedule: CosineSchedule(baseRate: rate, warmupSteps: 10, totalSteps: steps))
        settings.labelSmoothing = 0
        settings.precision = precision
        let trainer = Trainer(model: model, settings: settings)
        var data = RandomGenerator(seed: seed + 1)
        var losses: [Float] = []
        for _ in 0..<steps {
            let (images, labels) = syntheticBatch(16, side: side, using: &data)
            losses.append(try trainer.step(images: images, labels: labels))
        }
        var heldOut = RandomGenerator(seed: 999)
        let (images, labels) = syntheticBatch(96, side: side, using: &heldOut)
        let logits = trainer.predict(images)
        let correct = (0..<96).filter { b in
            let row = (0..<config.classes).map { logits[b, $0] }
            return row.firstIndex(of: row.max()!) == labels[b]
        }.count
        return (losses, Double(correct) / 96)
    }

    /// Mixed precision (bfloat16 products, float32 sums, weights and everything else) on the
    /// synthetic task, from the same weights and batches as float32: over the 120 steps the loss
    /// curve, smoothed over 10 steps, stays within 0.05 nats of float32's (the starting loss is
    /// log 3 ≈ 1.1; measured on an AVX2 CPU, emulated products: 0.001) and the model still learns
    /// the task.
    /// On CPUs without bfloat16 hardware the products are the float32 GEMM on rounded operands,
    /// the same numbers up to the order of the sums.
    func testBFloat16TrainingFollowsTheFloat32LossCurve() throws {
        let config = Self.tinyConfig(classes: 3)
        let float32 = try Self.trainSyntheticTask(config, steps: 120, rate: 1e-2, seed: 11)
        let bfloat16 = try Self.trainSyntheticTask(config, steps: 120, rate: 1e-2, seed: 11, precision: .bfloat16)
        XCTAssertNotEqual(float32.losses, bfloat16.losses, "bf16 products must change the numbers")
        func smoothed(_ x: [Float]) -> [Float] { (0..<(x.count - 9)).map { i in x[i..<(i + 10)].reduce(0, +) / 10 } }
        let gap = zip(smoothed(float32.losses), smoothed(bfloat16.losses)).map { abs($0 - $1) }.max()!
        print("bf16 vs fp32: largest gap of the 10-step mean loss \(gap); final loss \(float32.losses.last!) vs \(bfloat16.losses.last!); held-out accuracy \(float32.accuracy) vs \(bfloat16.accuracy)")
        XCTAssertLessThan(gap, 0.05)
        XCTAssertGreaterThanOrEqual(bfloat16.accuracy, 0.95)
        XCTAssertLessThan(bfloat16.losses.last!, bfloat16.losses[0] / 4)
        XCTAssertEqual(BLAS.precision, .float32, "the trainer's precision must not outlive its step")
    }

    /// `predict` cuts the batch into chunks run side by side, one worker each: for any number of
    /// workers (1, 2, 3) and batches of 1, 5 and 21 images (chunks of 16 + 5, 11 + 10, 7 × 3, …)
    /// it gives one evaluation forward of the whole batch.
    func testPredictInChunksEqualsOneEvaluationForward() throws {
        var rng = RandomGenerator(seed: 41)
        let model = try Classifier(config: Self.tinyConfig(classes: 3), using: &rng)
        let saved = ThreadPlan.kernelWorkers
        defer { ThreadPlan.kernelWorkers = saved }
        for batch in [1, 5, Classifier.inferenceChunk + 5] {
            let images = Tensor.normal([batch, 3, 16, 16], using: &rng)
            var unused = RandomGenerator(seed: 0)
            let whole = model.forward(images, training: false, using: &unused)
            for workers in [1, 2, 3] {
                ThreadPlan.kernelWorkers = workers
                let predicted = model.predict(images)
                XCTAssertEqual(predicted.shape, [batch, 3])
                XCTAssertLessThan(GradientCheck.relativeError(predicted, whole), 1e-6, "batch \(batch), \(workers) workers")
            }
        }
    }

    /// A linear probe's step (`encoderFrozen`: the encoder in evaluation mode, no backward through
    /// it) gives the full training step's loss and head gradients when the encoder has no
    /// drop-path (head dropout on, so the random draws must line up too), and leaves every encoder
    /// gradient at zero where the full step fills them.
    func testFrozenEncoderStepEqualsTheFullStepOnTheHead() throws {
        var config = ModelConfiguration.tinyTest(classes: 3)
        config.dropPathRate = 0
        config.headDropout = 0.2
        var rng = RandomGenerator(seed: 43)
        let (images, labels) = Self.syntheticBatch(6, using: &rng)
        var results: [(loss: Float, head: [Tensor], encoderGradientNorm: Float)] = []
        for frozen in [false, true] {
            var build = RandomGenerator(seed: 44)
            let model = try Classifier(config: config, using: &build)
            model.encoderFrozen = frozen
            var draws = RandomGenerator(seed: 45)
            let (loss, gradient) = CrossEntropy.loss(logits: model.forward(images, training: true, using: &draws), labels: labels, smoothing: 0.1)
            model.backward(gradient)
            let head = model.parameters.filter { $0.name.hasPrefix("head.") }.map(\.gradient)
            let encoder = model.encoder.parameters.map { $0.gradient.scalars.reduce(0) { $0 + $1 * $1 } }.reduce(0, +)
            results.append((loss, head, encoder))
        }
        let (full, probe) = (results[0], results[1])
        XCTAssertEqual(probe.loss, full.loss, accuracy: 1e-6 * abs(full.loss))
        XCTAssertEqual(probe.head.count, 2)
        for (p, f) in zip(probe.head, full.head) { XCTAssertLessThan(GradientCheck.relativeError(p, f), 1e-6) }
        XCTAssertGreaterThan(full.encoderGradientNorm, 0, "the full step trains the encoder")
        XCTAssertEqual(probe.encoderGradientNorm, 0, "a frozen encoder gets no gradient")
    }

    /// Inside `BLAS.onOneThread` every split kernel runs on the calling thread; outside, the
    /// settings are back, and other threads never see it.
    func testOneThreadScope() {
        let (threads, workers) = (BLAS.threads, ThreadPlan.kernelWorkers)
        BLAS.onOneThread {
            XCTAssertEqual(BLAS.threads, 1)
            XCTAssertEqual(ThreadPlan.kernelWorkers, 1)
            XCTAssertTrue(BLAS.isOnOneThread)
        }
        XCTAssertEqual(BLAS.threads, threads)
        XCTAssertEqual(ThreadPlan.kernelWorkers, workers)
        XCTAssertFalse(BLAS.isOnOneThread)
    }

    func testLearnsASyntheticTaskToNearPerfectAccuracy() throws {
        let (firstLoss, lastLoss, accuracy) = try Self.learnSyntheticTask(Self.tinyConfig(classes: 3), steps: 120, rate: 1e-2, seed: 11)
        print("synthetic task: loss \(firstLoss) → \(lastLoss), held-out accuracy \(accuracy)")
        XCTAssertGreaterThanOrEqual(accuracy, 0.95)
        XCTAssertLessThan(lastLoss, firstLoss / 4)
    }

    func testResumingFromACheckpointContinuesBitExactly() throws {
        func makeTrainer() throws -> Trainer<Classifier> {
            var rng = RandomGenerator(seed: 21)
            var settings = TrainingSettings(schedule: CosineSchedule(baseRate: 2e-3, warmupSteps: 2, totalSteps: 8))
            settings.accumulationSteps = 2
            return Trainer(model: try Classifier(config: Self.tinyConfig(classes: 3), using: &rng), settings: settings)
        }
        func batches() -> [(Tensor, [Int])] {
            var data = RandomGenerator(seed: 22)
            return (0..<8).map { _ in Self.syntheticBatch(4, using: &data) }
        }
        let data = batches()
        let straight = try makeTrainer()
        let uninterrupted = try data.map { try straight.step(images: $0.0, labels: $0.1) }

        let first = try makeTrainer()
        var resumedLosses = try data[0..<3].map { try first.step(images: $0.0, labels: $0.1) }  // stop mid-accumulation
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ssmamba-resume-\(UUID())/step-3")
        defer { try? FileManager.default.removeItem(at: directory.deletingLastPathComponent()) }
        try first.checkpoint(config: first.model.config).write(to: directory)
        try first.checkpoint(config: first.model.config).write(to: directory)  // overwriting an existing checkpoint is atomic too
        let resumed = try Trainer<Classifier>.resume(from: try Checkpoint.read(from: directory), source: directory.path)
        XCTAssertEqual(resumed.optimizerStep, first.optimizerStep)
        resumedLosses += try data[3...].map { try resumed.step(images: $0.0, labels: $0.1) }
        XCTAssertEqual(resumedLosses, uninterrupted, "a resumed run must produce the same loss sequence")
        for (a, b) in zip(straight.model.parameters, resumed.model.parameters) {
            XCTAssertEqual(a.value, b.value, a.name)
        }
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory.deletingLastPathComponent().path)
        XCTAssertEqual(leftovers, ["step-3"])
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: directory.path)),
                       ["model.safetensors", "optimizer.safetensors", "checkpoint.json"])
    }

    func testLayerDecayScalesEachBlocksRate() {
        let names = ["patch_embed.proj.weight", "blocks.0.norm1.weight", "blocks.3.mixer.in_proj.weight", "norm.weight", "head.bias"]
        let parameters = names.map { Parameter($0, Tensor(zeros: [1]), decays: true) }
        let scales = LayerDecay.scales(parameters, depth: 4, decay: 0.5)
        XCTAssertEqual(scales, [0.03125, 0.0625, 0.5, 1, 1])
    }

    /// Hostile checkpoint configurations are refused before any allocation (they aborted or trapped).
    func testOutOfBoundsConfigurationsAreRefused() throws {
        for (field, value) in [("dim", "1000000000"), ("channels", "-1"), ("stateSize", "4611686018427387904"),
                               ("imageSize", "1073741824"), ("localKernels", "[99999999]"), ("depth", "0")] {
            let json = #"{"name": "hostile", "\#(field)": \#(value)}"#
            let config = try JSONDecoder().decode(ModelConfiguration.self, from: Data(json.utf8))
            var rng = RandomGenerator(seed: 0)
            XCTAssertThrowsError(try Classifier(config: config, using: &rng), field) { error in
                XCTAssertTrue(error is ConfigurationError, "\(field): \(error)")
            }
        }
    }

    func testCheckpointErrorsNameTheDirectory() {
        let missing = URL(fileURLWithPath: "/nonexistent/checkpoint")
        XCTAssertThrowsError(try Checkpoint.read(from: missing)) { error in
            XCTAssertTrue(String(describing: error).contains("/nonexistent/checkpoint"))
        }
    }
}
