import Distributed
import Flow
import Foundation
import Metrics
import Randomness
import Slides
import SSMamba
import Tensors
import Tiling

/// `finetune`: supervised training of the classifier on labelled cached tiles, streamed from the
/// cache (`CacheBatchStream`), from scratch or from a pretrained encoder; keeps the best checkpoint
/// on validation (balanced accuracy), then reports test metrics with bootstrap 95 % intervals.
final class FinetuneStage: Stage, @unchecked Sendable {
    typealias Output = Never
    let name: String
    let baseConfiguration: ModelConfiguration
    let initFrom: CheckpointSource?
    let epochs: Int, batchSize: Int
    let learningRate: Float, weightDecay: Float, labelSmoothing: Float
    let balanced: Bool
    let warmup: Double?, layerDecay: Float, freezeEncoder: Bool
    let validationFraction: Double, testFraction: Double
    let augmentation: Augmentation
    let seed: UInt64
    let readers: Int, checkpointEvery: Int
    let precision: GEMMPrecision
    /// Model copies training side by side in this process, if the flow says how many.
    let askedReplicas: Int?
    let record: TrainingRecord
    /// The processes training together under mpirun/srun (nil: this one alone).
    let group: Communicator?
    let folder: URL
    let collection = TrainingTiles()
    let artifacts: Artifacts

    init(_ p: FinetuneKind.Parameters, initFrom: CheckpointSource?, _ step: StepAssembly) throws {
        name = step.name
        checkpointEvery = p.checkpointEvery
        baseConfiguration = try p.model.configuration()
        self.initFrom = initFrom
        epochs = p.epochs
        batchSize = p.batch
        learningRate = Float(p.lr)
        weightDecay = Float(p.weightDecay)
        labelSmoothing = Float(p.labelSmoothing)
        balanced = p.balanced
        validationFraction = p.validationFraction
        testFraction = p.testFraction
        augmentation = Augmentation(p)
        warmup = p.warmup
        layerDecay = Float(p.layerDecay)
        freezeEncoder = p.freezeEncoder
        seed = UInt64(step.seed)
        readers = p.readers
        precision = TrainingPrecision.resolve(p.precision, stage: step.name)
        askedReplicas = p.replicas
        folder = step.runFolder.appendingPathComponent(name)
        record = try TrainingRecord(folder: folder, stage: "finetune", parameters: step.step.parameters, ignoring: ["readers", "checkpoint_every", "replicas"],
                                    seed: seed, resume: step.resume)
        group = try DataParallel.trainingGroup()
        artifacts = step.artifacts
    }

    func process(_ input: Tile, _ context: StageContext<Never>) throws {
        guard let label = input.label, !label.isEmpty else {
            throw StageError(.invalidInput, "\(input)", "no label (fine-tuning needs labelled tiles: class folders, a CSV label column, or nucleus types)")
        }
        try collection.add(input, stage: name)
    }

    func finish(_ context: StageContext<Never>) throws {
        try artifacts.produce(name) { try train(context) }
    }

    /// Splits: the dataset's own (train / validation / test) when every tile has one, otherwise
    /// by patient (slides with a patient in the labels CSV) or by source file, seeded, so one
    /// patient's or one image's tiles never straddle splits.
    func split(_ tiles: TrainingSet) -> (train: TrainingSet, validation: TrainingSet, test: TrainingSet) {
        let all = Array(0..<tiles.count)
        if all.allSatisfy({ tiles.split($0) != nil }) {
            return (tiles.subset(all.filter { tiles.split($0) == "train" }), tiles.subset(all.filter { tiles.split($0) == "validation" }),
                    tiles.subset(all.filter { tiles.split($0) == "test" }))
        }
        func group(_ i: Int) -> String { tiles.patient(i).map { "patient " + $0 } ?? tiles.source(i) }
        let sources = Array(Set(all.map(group))).sorted()
        var rng = RandomGenerator(seed: seed &+ 17)
        let order = rng.permutation(sources.count).map { sources[$0] }
        let testCount = Int((Double(sources.count) * testFraction).rounded()), validationCount = Int((Double(sources.count) * validationFraction).rounded())
        let test = Set(order.prefix(testCount)), validation = Set(order.dropFirst(testCount).prefix(validationCount))
        return (tiles.subset(all.filter { !test.contains(group($0)) && !validation.contains(group($0)) }),
                tiles.subset(all.filter { validation.contains(group($0)) }), tiles.subset(all.filter { test.contains(group($0)) }))
    }

    private func train(_ context: StageContext<Never>) throws -> URL {
        let tiles = collection.take()
        let classes = Array(Set((0..<tiles.count).compactMap(tiles.label))).sorted()
        guard classes.count >= 2 else { throw StageError("'\(name)' needs at least two classes; got \(classes)") }
        let (train, validation, test) = split(tiles)
        context.count("\(name).train_tiles", train.count)
        context.count("\(name).validation_tiles", validation.count)
        context.count("\(name).test_tiles", test.count)
        guard !train.isEmpty, !validation.isEmpty, !test.isEmpty else {
            throw StageError("'\(name)': empty split (train \(train.count), validation \(validation.count), test \(test.count)); add data or change the fractions")
        }
        var config = baseConfiguration
        config.classes = classes.count
        if freezeEncoder { config.dropPathRate = 0 }  // a probe reads the encoder's deterministic features
        var rng = RandomGenerator(seed: seed)
        let model = try Classifier(config: config, using: &rng)
        if let initFrom {
            let url = try initFrom.url(artifacts, isStopping: { context.isStopping })
            let pretrained = try Checkpoint.read(from: url)
            let differences = config.architectureDifferences(from: pretrained.manifest.model)
            guard differences.isEmpty else {
                throw StageError("'\(name)': the checkpoint \(url.path) was made with another network than `model:` describes "
                                 + "(\(differences.joined(separator: "; "))); set `model:` to the checkpoint's configuration")
            }
            var encoder = pretrained.weights
            encoder.entries = encoder.entries.filter { !$0.key.hasPrefix("decoder.") && !$0.key.hasPrefix("head.") }
            try model.encoder.loadStateDictionary(encoder, source: url.path)
            context.count("\(name).initialised_from_pretrained")
        }
        let index = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, $0) })
        let labels = (0..<train.count).map { index[train.label($0)!]! }
        let stepsPerEpoch = (train.count + batchSize - 1) / batchSize
        let warmupSteps = warmup.map { Int(($0 * Double(epochs * stepsPerEpoch)).rounded()) } ?? stepsPerEpoch / 2
        var training = TrainingSettings(schedule: CosineSchedule(baseRate: learningRate, warmupSteps: max(1, warmupSteps), totalSteps: epochs * stepsPerEpoch))
        training.optimizer.weightDecay = weightDecay
        training.labelSmoothing = labelSmoothing
        training.seed = seed &+ 1
        training.precision = precision
        // A frozen encoder: the head alone learns (the encoder keeps no activations and gets no
        // gradient). Layer-wise decay scales each block's rate.
        func trainer(_ model: Classifier) -> Trainer<Classifier> {
            model.encoderFrozen = freezeEncoder
            let trainable = model.trainableParameters
            let scales = layerDecay < 1 ? LayerDecay.scales(trainable, depth: config.depth, decay: layerDecay) : nil
            return Trainer(model: model, settings: training, trainable: trainable, learningRateScales: scales)
        }
        // The copies take the first model's weights (pretrained or not).
        let trainers = try DataParallel.replicas(of: model, asked: askedReplicas, batch: batchSize, group: group,
                                                 copy: { try Classifier(config: config, using: &rng) }, trainer: trainer)
        let trainer = trainers.main
        if freezeEncoder { context.count("\(name).frozen_encoder_parameters", model.parameters.count - trainer.trainable.count) }
        context.count("\(name).replicas", trainers.count)
        let (start, notes) = try record.start(trainer, tiles: tiles)
        if start > 0 { try trainers.synchronizeFromMain(config: config) }
        var best: (score: Double, epoch: Int, weights: SafeTensorsFile)?
        /// The validation balanced accuracy after each epoch (kept in `last`, so a resumed run's curve is whole).
        var history = (start > 0 ? notes["validation_history"] : nil).map { $0.split(separator: ",").compactMap { Double($0) } } ?? []
        if start > 0 {
            context.count("\(name).resumed_at_step", start)
            if let epoch = notes["best_epoch"].flatMap(Int.init), let score = notes["best_score"].flatMap(Double.init) {
                best = (score, epoch, try Checkpoint.read(from: folder.appendingPathComponent("best")).weights)
            }
        }
        let wholePlan = balanced ? Self.balancedPlan(labels: labels, classes: classes.count, batch: batchSize, seed: seed &+ 303)
                                 : EpochOrder(count: train.count, seed: seed &+ 303).batchPlan(size: batchSize)
        // Under mpirun/srun each process reads its share of every batch; gradients are averaged.
        let (plan, offset) = try DataParallel.share(wholePlan, batch: batchSize, stage: name)
        trainers.sampleOffset = offset
        if let group { context.count("\(name).processes", group.size) }
        let reader = CacheBatchReader(tiles: train, augmentation: augmentation, size: config.imageSize, seed: seed &+ 202, positionOffset: offset)
        try reader.checkTileSize()
        let stream = CacheBatchStream(reader, first: start, count: epochs * stepsPerEpoch, plan: plan, readers: readers)
        defer { stream.stop() }
        /// What `last` says besides the trainer: the best epoch so far and the epoch's running loss.
        func progressNotes(_ epochLoss: Double, _ epochSteps: Int) -> [String: String] {
            var notes = ["kind": "classifier", "epoch_loss": String(epochLoss.bitPattern, radix: 16), "epoch_steps": "\(epochSteps)"]
            if let best { notes["best_epoch"] = "\(best.epoch)"; notes["best_score"] = "\(best.score)" }
            notes["validation_history"] = history.map { "\($0)" }.joined(separator: ",")
            return notes
        }
        var position = start, saved = start, imagesRead = 0
        var epochLoss = start % stepsPerEpoch == 0 ? 0 : notes["epoch_loss"].flatMap { UInt64($0, radix: 16) }.map(Double.init(bitPattern:)) ?? 0
        var epochSteps = start % stepsPerEpoch == 0 ? 0 : notes["epoch_steps"].flatMap(Int.init) ?? 0
        while position < epochs * stepsPerEpoch, !context.isStopping {
            let epoch = position / stepsPerEpoch
            guard let batch = stream.next() else { break }
            for (tile, reason) in batch.failures { context.reportFailure(item: tile.description, reason: reason) }
            context.count("\(name).tiles_read", batch.members.count)
            imagesRead += batch.members.count
            if context.isStopping { break }
            if !batch.members.isEmpty || group != nil {  // every process steps, even with an empty share
                let rate = trainer.learningRate
                let loss = try trainers.step(images: batch.images, labels: batch.members.map { labels[$0] })
                try record.log(step: position, loss: loss, learningRate: rate)
                epochLoss += Double(loss)
                epochSteps += 1
                context.count("\(name).steps")
            }
            position += 1
            if position % stepsPerEpoch == 0 {
                let (scored, scores) = try predict(model, validation, context)
                if context.isStopping { break }
                let metrics = ClassificationMetrics(truth: scored.map { index[validation.label($0)!]! }, predicted: scores.map(Probabilities.argmax), classes: classes.count)
                context.record(metric: "\(name).train_loss", epochLoss / Double(max(1, epochSteps)))
                context.record(metric: "\(name).validation_balanced_accuracy", metrics.balancedAccuracy)
                history.append(metrics.balancedAccuracy)
                if best == nil || metrics.balancedAccuracy > best!.score {
                    best = (metrics.balancedAccuracy, epoch, model.stateDictionary())
                    if record.writes { try writeBest(best!, config: config, classes: classes) }
                }
                (epochLoss, epochSteps) = (0, 0)
                try record.save(trainer, config: config, position: position, notes: progressNotes(epochLoss, epochSteps))
                saved = position
            } else if position % checkpointEvery == 0 {
                try record.save(trainer, config: config, position: position, notes: progressNotes(epochLoss, epochSteps))
                saved = position
            }
        }
        context.record(metric: "\(name).waited_for_data_seconds", stream.waitedSeconds)
        if !context.isStopping {
            try DataParallel.recordPerRank(stage: name, group: group, images: imagesRead, waitedForData: stream.waitedSeconds,
                                           synchronizing: trainers.synchronizationSeconds, context: context)
        }
        if context.isStopping {
            if position > saved && position % stepsPerEpoch != 0 {
                try record.save(trainer, config: config, position: position, notes: progressNotes(epochLoss, epochSteps))
            }
            throw StageError("'\(name)': the run stopped at step \(position) of \(epochs * stepsPerEpoch); `ssmamba run FLOW --resume` continues from \(record.lastURL.path)")
        }
        guard let best else { throw StageError("'\(name)': no epoch ended") }
        try model.loadStateDictionary(best.weights, source: "best epoch")
        context.record(metric: "\(name).best_epoch", Double(best.epoch))

        // Test metrics of the best checkpoint.
        let (scored, probabilities) = try predict(model, test, context)
        let truth = scored.map { index[test.label($0)!]! }
        let report = TestReport(classes: classes, truth: truth, probabilities: probabilities, seed: seed)
        for (key, value) in report.headline { context.record(metric: "\(name).test_\(key)", value) }
        if record.writes {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try report.write(to: folder)
            try ResultPictures.loss(log: record.logURL, into: folder, stage: name, title: "Fine-tuning loss", context: context)
            try ResultPictures.validation(history, into: folder, stage: name, context: context)
            try ResultPictures.test(classes: classes, truth: truth, probabilities: probabilities, confusion: report.metrics.confusion,
                                    into: folder, stage: name, context: context)
        }
        return folder.appendingPathComponent("best")
    }

    /// The best epoch so far as `<run>/<stage>/best` (the classifier `evaluate_slides` loads).
    private func writeBest(_ best: (score: Double, epoch: Int, weights: SafeTensorsFile), config: ModelConfiguration, classes: [String]) throws {
        var manifest = Checkpoint.Manifest(model: config)
        manifest.notes = ["kind": "classifier", "classes": classes.joined(separator: ","), "best_epoch": "\(best.epoch)",
                          "validation_balanced_accuracy": "\(best.score)", "initialised_from": initFrom?.description ?? "scratch"]
        try Checkpoint(manifest: manifest, weights: best.weights).write(to: folder.appendingPathComponent("best"))
    }

    /// Softmax probabilities in evaluation mode, in batches streamed from the cache: the indices
    /// of the tiles scored and their probabilities (a tile that cannot be read is reported, not scored).
    func predict(_ model: Classifier, _ tiles: TrainingSet, _ context: StageContext<Never>) throws -> (scored: [Int], probabilities: [[Double]]) {
        let reader = CacheBatchReader(tiles: tiles, augmentation: .evaluation, size: model.config.imageSize, seed: 0)
        let stream = CacheBatchStream(reader, inOrderBatchesOf: 64, readers: readers)
        defer { stream.stop() }
        var scored: [Int] = [], probabilities: [[Double]] = []
        while let batch = stream.next() {
            for (tile, reason) in batch.failures { context.reportFailure(item: tile.description, reason: reason) }
            if context.isStopping { throw StageError("'\(name)': the run stopped during evaluation") }
            guard !batch.members.isEmpty else { continue }
            scored += batch.members
            probabilities += Probabilities.rows(model.predict(batch.images))
        }
        return (scored, probabilities)
    }

    /// Class-balanced batches: each slot picks a class uniformly (among classes with tiles), then
    /// one of its tiles; batch k from its own seeded stream.
    static func balancedPlan(labels: [Int], classes: Int, batch: Int, seed: UInt64) -> @Sendable (Int) -> [Int] {
        let members = (0..<classes).map { k in labels.indices.filter { labels[$0] == k } }.filter { !$0.isEmpty }
        return { k in
            var rng = RandomGenerator(seed: seed).stream(UInt64(k))
            return (0..<batch).map { _ in
                let group = members[rng.integer(below: members.count)]
                return group[rng.integer(below: group.count)]
            }
        }
    }
}

/// Test metrics of a classifier with bootstrap intervals, written as metrics.json and confusion.csv.
struct TestReport {
    let classes: [String]
    let metrics: ClassificationMetrics
    let auc: Double?
    let intervals: [String: Bootstrap.Interval]

    init(classes: [String], truth: [Int], probabilities: [[Double]], seed: UInt64) {
        self.classes = classes
        let predicted = probabilities.map(Probabilities.argmax)
        metrics = ClassificationMetrics(truth: truth, predicted: predicted, classes: classes.count)
        func auc(_ sample: [Int]) -> Double? {
            let t = sample.map { truth[$0] }, p = sample.map { probabilities[$0] }
            return classes.count == 2 ? RankingMetrics.rocAUC(positive: t.map { $0 == 1 }, scores: p.map { $0[1] })
                                      : RankingMetrics.macroRocAUC(truth: t, probabilities: p)
        }
        self.auc = auc(Array(truth.indices))
        func metric(_ pick: @escaping (ClassificationMetrics) -> Double) -> ([Int]) -> Double? {
            { sample in pick(ClassificationMetrics(truth: sample.map { truth[$0] }, predicted: sample.map { predicted[$0] }, classes: classes.count)) }
        }
        var intervals: [String: Bootstrap.Interval] = [:]
        intervals["accuracy"] = Bootstrap.interval(count: truth.count, seed: seed, metric: metric(\.accuracy))
        intervals["balanced_accuracy"] = Bootstrap.interval(count: truth.count, seed: seed, metric: metric(\.balancedAccuracy))
        intervals["macro_f1"] = Bootstrap.interval(count: truth.count, seed: seed, metric: metric(\.macroF1))
        intervals["auc"] = Bootstrap.interval(count: truth.count, seed: seed, metric: auc)
        self.intervals = intervals
    }

    var headline: [(String, Double)] {
        [("accuracy", metrics.accuracy), ("balanced_accuracy", metrics.balancedAccuracy), ("macro_f1", metrics.macroF1)]
            + (auc.map { [("auc", $0)] } ?? [])
    }

    func write(to folder: URL) throws {
        var object: [String: Any] = ["classes": classes, "count": metrics.confusion.reduce(0) { $0 + $1.reduce(0, +) },
                                     "confusion": metrics.confusion, "precision": metrics.precision, "recall": metrics.recall]
        for (key, value) in headline { object[key] = value }
        object["intervals_95"] = intervals.mapValues { ["lower": $0.lower, "upper": $0.upper, "resamples": $0.resamples] }
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: folder.appendingPathComponent("metrics.json"), options: .atomic)
        var csv = CSVField.line(["truth\\predicted"] + classes)
        for (k, row) in metrics.confusion.enumerated() { csv += CSVField.line([classes[k]] + row.map(String.init)) }
        try Data(csv.utf8).write(to: folder.appendingPathComponent("confusion.csv"), options: .atomic)
    }
}
