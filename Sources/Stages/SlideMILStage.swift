import Distributed
import Flow
import Foundation
import Metrics
import Randomness
import Slides
import SSMamba
import Tensors
import TileCache
import Tiling

/// `slide_mil`: whole-slide tasks from tile embeddings, on the flow's own slide tiles (tissue →
/// tiles → stain → cache, streamed from the cache). It keeps a reference per tile; once its input
/// has ended and the encoder exists, each slide's tiles (at most `max_tiles`, evenly spaced) are
/// embedded by the checkpoint's encoder (mean of its output tokens) and the bag is cached as
/// safetensors keyed by the slide, the encoder and the tiles. Then an attention-MIL aggregator
/// (ABMIL) is trained on the labelled slides — classification from the `label` column, or
/// survival from `time`/`event` with the Cox loss — and evaluated by k-fold cross-validation over
/// slides (patients kept together), since slide counts are small.
final class SlideMILStage: Stage, @unchecked Sendable {
    typealias Output = Never
    /// One slide's bag: what the labels CSV says of it and its tile embeddings.
    struct Bag {
        let slide: String
        let label: String?, patient: String?, time: Double?, event: Bool?
        let embeddings: Tensor
    }

    let name: String
    let checkpoint: CheckpointSource
    let selection: SlideTileSelection
    let maximumTiles: Int
    let survival: Bool
    let epochs: Int, hidden: Int, folds: Int, readers: Int
    let learningRate: Float
    let cacheFolder: URL, folder: URL
    /// The processes sharing out the slides' embeddings under mpirun/srun (nil: this one alone).
    let group: Communicator?
    let seed: UInt64
    let artifacts: Artifacts
    private let lock = NSLock()
    private var tiles = TrainingSet()
    private var facts: [String: (label: String?, patient: String?, time: Double?, event: Bool?)] = [:]

    init(_ p: SlideMILKind.Parameters, checkpoint: CheckpointSource, _ step: StepAssembly) throws {
        name = step.name
        self.checkpoint = checkpoint
        selection = SlideTileSelection(stage: name, micronsPerPixel: p.mpp, minimumTissue: p.minTissue)
        maximumTiles = p.maxTiles
        survival = p.task == "survival"
        epochs = p.epochs
        hidden = p.hidden
        folds = p.folds
        readers = p.readers
        learningRate = Float(p.lr)
        cacheFolder = p.cache.hasPrefix("/") ? URL(fileURLWithPath: p.cache) : URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(p.cache)
        folder = step.runFolder.appendingPathComponent(name)
        group = try DataParallel.trainingGroup()
        seed = UInt64(step.seed)
        artifacts = step.artifacts
    }

    /// Takes the reference of a tile of the chosen scale (`mpp`, or each position's first crop).
    func process(_ tile: Tile, _ context: StageContext<Never>) throws {
        guard let (entry, _) = try selection.select(tile, context) else { return }
        try lock.withLock {
            try tiles.append(TrainingTile(entry: entry, label: tile.label, source: tile.source, patient: tile.patient))
            facts[tile.source] = (tile.label, tile.patient, tile.time, tile.event)
        }
    }

    /// The encoder of the checkpoint and an identity of its weights (for the embedding cache).
    private func loadEncoder(_ context: StageContext<Never>) throws -> (model: Encoder, identity: String) {
        let url = try checkpoint.url(artifacts, isStopping: { context.isStopping })
        let saved = try Checkpoint.read(from: url)
        var rng = RandomGenerator(seed: 0)
        let model = try Encoder(config: saved.manifest.model, using: &rng)
        var weights = saved.weights
        weights.entries = weights.entries.filter { !$0.key.hasPrefix("decoder.") && !$0.key.hasPrefix("head.") }
        try model.loadStateDictionary(weights, source: url.path)
        return (model, try String(Fingerprint.source(path: url.appendingPathComponent("model.safetensors").path), radix: 16))
    }

    /// One slide's embeddings: from the embedding cache, or its tiles streamed from the tile cache
    /// through the encoder (32 at a time).
    private func embed(_ slide: String, _ tiles: TrainingSet, encoder: (model: Encoder, identity: String), context: StageContext<Never>) throws -> Tensor {
        let model = encoder.model, dim = model.config.outputWidth
        let key = String(Fingerprint.parameters(["encoder": encoder.identity, "tiles": String(Fingerprint.records(tiles.keys), radix: 16)]), radix: 16)
        let stem = ((slide as NSString).lastPathComponent as NSString).deletingPathExtension
        let file = cacheFolder.appendingPathComponent("\(stem)-\(key).safetensors")
        if let cached = try? SafeTensorsFile(contentsOf: file), let embeddings = try? cached.tensor("embeddings"), embeddings.shape == [tiles.count, dim] {
            context.count("\(name).embeddings_reused")
            return embeddings
        }
        let reader = CacheBatchReader(tiles: tiles, augmentation: .evaluation, size: model.config.imageSize, seed: 0)
        try reader.checkTileSize()
        let stream = CacheBatchStream(reader, inOrderBatchesOf: 32, readers: readers)
        defer { stream.stop() }
        var rows: [Float] = []
        rows.reserveCapacity(tiles.count * dim)
        var rng = RandomGenerator(seed: 0)
        while let batch = stream.next() {
            if let (tile, reason) = batch.failures.first {
                throw StageError(.invalidInput, "\(tile)", "\(reason) (a bag needs all its tiles: \(batch.failures.count) unreadable in this batch)")
            }
            let tokens = model.forward(batch.images, grid: model.fullGrid(batch: batch.members.count), training: false, using: &rng)
            rows += tokens.mean(alongAxis: 1).scalars
            if context.isStopping { throw StageError("the run stopped while \((slide as NSString).lastPathComponent) was embedded") }
        }
        let embeddings = Tensor(shape: [tiles.count, dim], scalars: rows)
        try FileManager.default.createDirectory(at: cacheFolder, withIntermediateDirectories: true)
        var saved = SafeTensorsFile()
        saved.set("embeddings", embeddings)
        try saved.write(to: file)
        context.count("\(name).embeddings_computed")
        context.count("\(name).tiles", tiles.count)
        return embeddings
    }

    /// Every slide's bag, slide by slide (a slide that cannot be embedded is reported and left out).
    private func bags(_ context: StageContext<Never>) throws -> [Bag] {
        let (tiles, facts) = lock.withLock { (self.tiles, self.facts) }
        guard !tiles.isEmpty else { return [] }
        let encoder = try loadEncoder(context)
        let bySlide = Dictionary(grouping: 0..<tiles.count, by: tiles.source)
        let slides = bySlide.keys.sorted()
        /// Evenly spaced over the slide's tiles in key order, at most `max_tiles`.
        func chosen(_ slide: String) -> [Int] {
            let all = bySlide[slide]!.sorted { tiles.key($0) < tiles.key($1) }
            return all.count <= maximumTiles ? all : (0..<maximumTiles).map { all[$0 * all.count / maximumTiles] }
        }
        // Under mpirun/srun rank r embeds slides r, r + R, … into the embedding cache (a shared
        // file system), the failures are gathered, and every rank then reads every bag from it.
        var failed: [FailureRecord] = []
        if let group {
            context.count("\(name).processes", group.size)
            for (index, slide) in slides.enumerated() where index % group.size == group.rank {
                if context.isStopping { break }
                do { _ = try embed(slide, tiles.subset(chosen(slide)), encoder: encoder, context: context) } catch {
                    if context.isStopping { break }
                    failed.append(FailureRecord(item: slide, reason: String(describing: error)))
                }
            }
            failed = try DataParallel.allGather(failed, group: group).flatMap { $0 }
            for failure in failed { context.reportFailure(item: failure.item, reason: failure.reason) }
        }
        let failedSlides = Set(failed.map(\.item))
        var bags: [Bag] = []
        for slide in slides where !failedSlides.contains(slide) {
            if context.isStopping { break }
            let picked = chosen(slide)
            do {
                let embeddings = try embed(slide, tiles.subset(picked), encoder: encoder, context: context)
                let f = facts[slide]!
                bags.append(Bag(slide: slide, label: f.label, patient: f.patient, time: f.time, event: f.event, embeddings: embeddings))
            } catch {
                if context.isStopping { break }
                context.reportFailure(item: slide, reason: String(describing: error))
            }
        }
        return bags
    }

    func finish(_ context: StageContext<Never>) throws {
        let all = try bags(context)
        if context.isStopping { return }
        let usable = all.filter { survival ? ($0.time != nil && $0.event != nil) : $0.label != nil }
        context.count("\(name).slides_with_targets", usable.count)
        guard usable.count >= 2 else {
            throw StageError("'\(name)' needs at least two slides with \(survival ? "time and event" : "a label") in the labels CSV; found \(usable.count) of \(all.count)")
        }
        let classes = Array(Set(usable.compactMap(\.label))).sorted()
        if !survival && classes.count < 2 { throw StageError("'\(name)' needs at least two slide classes; found \(classes)") }
        // Folds over patients (a slide without a patient is its own patient).
        let patients = Array(Set(usable.map { $0.patient ?? $0.slide })).sorted()
        var rng = RandomGenerator(seed: seed)
        let order = rng.permutation(patients.count)
        let k = min(folds, patients.count)
        var foldOf: [String: Int] = [:]
        for (rank, index) in order.enumerated() { foldOf[patients[index]] = rank % k }
        var outputs = [[Double]](repeating: [], count: usable.count)
        for fold in 0..<k {
            let trainIndices = usable.indices.filter { foldOf[usable[$0].patient ?? usable[$0].slide] != fold }
            let testIndices = usable.indices.filter { foldOf[usable[$0].patient ?? usable[$0].slide] == fold }
            let model = try train(usable, trainIndices, classes: classes, rng: &rng)
            for i in testIndices { outputs[i] = model.forward(usable[i].embeddings).scalars.map(Double.init) }
        }
        guard group?.isRoot ?? true else { return }  // every rank trained the same; rank 0 writes
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var csv = CSVField.line(["slide", "patient", "fold"] + (survival ? ["time", "event", "risk"] : ["label"] + classes.map { "p_\($0)" }))
        if survival {
            let risks = outputs.map { $0[0] }
            if let c = SurvivalMetrics.concordanceIndex(times: usable.map { $0.time! }, events: usable.map { $0.event! }, risks: risks) {
                context.record(metric: "\(name).cv_c_index", c)
            }
            for (i, bag) in usable.enumerated() {
                csv += CSVField.line([bag.slide, bag.patient ?? "", "\(foldOf[bag.patient ?? bag.slide]!)", "\(bag.time!)", bag.event! ? "1" : "0", "\(risks[i])"])
            }
        } else {
            let probabilities = Probabilities.rows(Tensor(shape: [outputs.count, classes.count], scalars: outputs.joined().map(Float.init)))
            let truth = usable.map { classes.firstIndex(of: $0.label!)! }
            let metrics = ClassificationMetrics(truth: truth, predicted: probabilities.map(Probabilities.argmax), classes: classes.count)
            context.record(metric: "\(name).cv_accuracy", metrics.accuracy)
            context.record(metric: "\(name).cv_balanced_accuracy", metrics.balancedAccuracy)
            if let auc = classes.count == 2 ? RankingMetrics.rocAUC(positive: truth.map { $0 == 1 }, scores: probabilities.map { $0[1] })
                                             : RankingMetrics.macroRocAUC(truth: truth, probabilities: probabilities) {
                context.record(metric: "\(name).cv_auc", auc)
            }
            for (i, bag) in usable.enumerated() {
                csv += CSVField.line([bag.slide, bag.patient ?? "", "\(foldOf[bag.patient ?? bag.slide]!)", bag.label!]
                                     + probabilities[i].map { String(format: "%.5f", $0) })
            }
        }
        try Data(csv.utf8).write(to: folder.appendingPathComponent("cross_validation.csv"), options: .atomic)
        // The aggregator trained on every slide, for later use.
        let final = try train(usable, Array(usable.indices), classes: classes, rng: &rng)
        try final.stateDictionary().write(to: folder.appendingPathComponent("abmil.safetensors"))
    }

    /// One aggregator on `indices`: every epoch one full-batch step of the shared `Trainer`
    /// (AdamW at a constant rate, clipped): cross-entropy over the bags in a shuffled order, or
    /// the Cox loss, which couples the slides (forward all, then back-propagate each risk's gradient).
    private func train(_ bags: [Bag], _ indices: [Int], classes: [String],
                       rng: inout RandomGenerator) throws -> AttentionMIL {
        let dim = bags[0].embeddings.shape[1]
        let model = AttentionMIL(dim: dim, hidden: hidden, outputs: survival ? 1 : classes.count, using: &rng)
        var settings = TrainingSettings(schedule: CosineSchedule(baseRate: learningRate, minimumRate: learningRate, warmupSteps: 0, totalSteps: epochs))
        settings.seed = rng.next()
        let trainer = Trainer(model: model, settings: settings)
        for _ in 0..<epochs {
            if survival {
                let risks = indices.map { Double(model.forward(bags[$0].embeddings).scalars[0]) }
                guard let (loss, gradient) = CoxLoss.loss(risks: risks, times: indices.map { bags[$0].time! }, events: indices.map { bags[$0].event! }) else { break }
                try trainer.step { _, scale in
                    for (k, i) in indices.enumerated() {
                        _ = model.forward(bags[i].embeddings)
                        model.backward(Tensor(shape: [1, 1], scalars: [Float(gradient[k]) * scale]))
                    }
                    return Float(loss)
                }
            } else {
                try trainer.step { rng, scale in
                    var total: Float = 0
                    for i in rng.permutation(indices.count).map({ indices[$0] }) {
                        let (loss, g) = CrossEntropy.loss(logits: model.forward(bags[i].embeddings), labels: [classes.firstIndex(of: bags[i].label!)!])
                        model.backward(g * (scale / Float(indices.count)))
                        total += loss
                    }
                    return total / Float(indices.count)
                }
            }
        }
        return model
    }
}
