import Flow
import Foundation
import Metrics
import SSMamba
import Slides
import Tensors
import TileCache
import Tiling

/// `slide_mil`: whole-slide tasks from tile embeddings. Each slide's tissue tiles are embedded by
/// the encoder of a checkpoint (mean of its output tokens), and the bag of embeddings is cached as
/// safetensors keyed by the slide file, the checkpoint and the grid parameters. At the end an
/// attention-MIL aggregator (ABMIL) is trained on the labelled slides — classification from the
/// `label` column, or survival from `time`/`event` with the Cox loss — and evaluated by k-fold
/// cross-validation over slides (patients kept together), since slide counts are small.
final class SlideMILStage: Stage, @unchecked Sendable {
    typealias Output = Never
    let name: String
    let checkpoint: CheckpointSource
    let micronsPerPixel: Double, minimumTissue: Double
    let maximumTiles: Int
    let survival: Bool
    let epochs: Int, hidden: Int, folds: Int
    let learningRate: Float
    let cacheFolder: URL, folder: URL
    let seed: UInt64
    let artifacts: Artifacts
    private let lock = NSLock()
    private var encoder: (model: Encoder, identity: String)?
    private var bags: [(slide: SlideItem, embeddings: Tensor)] = []

    init(name: String, _ p: ParameterValues, checkpoint: CheckpointSource, seed: Int, runFolder: URL, artifacts: Artifacts) {
        self.name = name
        self.checkpoint = checkpoint
        micronsPerPixel = p.number("mpp")
        minimumTissue = p.number("min_tissue")
        maximumTiles = p.integer("max_tiles")
        survival = p.text("task") == "survival"
        epochs = p.integer("epochs")
        hidden = p.integer("hidden")
        folds = p.integer("folds")
        learningRate = Float(p.number("lr"))
        let cache = p.text("cache")
        cacheFolder = cache.hasPrefix("/") ? URL(fileURLWithPath: cache) : URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(cache)
        folder = runFolder.appendingPathComponent(name)
        self.seed = UInt64(seed)
        self.artifacts = artifacts
    }

    private func loadEncoder(_ context: StageContext<Never>) throws -> (model: Encoder, identity: String) {
        try lock.withLock {
            if let encoder { return encoder }
            let url = try checkpoint.url(artifacts, isStopping: { context.isStopping })
            let saved = try Checkpoint.read(from: url)
            var rng = RandomGenerator(seed: 0)
            let model = try Encoder(config: saved.manifest.model, using: &rng)
            var weights = saved.weights
            weights.entries = weights.entries.filter { !$0.key.hasPrefix("decoder.") && !$0.key.hasPrefix("head.") }
            try model.loadStateDictionary(weights, source: url.path)
            let identity = try String(Fingerprint.source(path: url.appendingPathComponent("model.safetensors").path), radix: 16)
            encoder = (model, identity)
            return (model, identity)
        }
    }

    func process(_ slide: SlideItem, _ context: StageContext<Never>) throws {
        let (model, identity) = try loadEncoder(context)
        let size = model.config.imageSize
        let key = String(Fingerprint.parameters(["slide": String(slide.fingerprint), "encoder": identity, "mpp": "\(micronsPerPixel)",
                                                 "min_tissue": "\(minimumTissue)", "max_tiles": "\(maximumTiles)"]), radix: 16)
        let stem = ((slide.path as NSString).lastPathComponent as NSString).deletingPathExtension
        let file = cacheFolder.appendingPathComponent("\(stem)-\(key).safetensors")
        if let cached = try? SafeTensorsFile(contentsOf: file), let embeddings = try? cached.tensor("embeddings") {
            context.count("\(name).embeddings_reused")
            lock.withLock { bags.append((slide, embeddings)) }
            return
        }
        let reader = slide.reader
        var positions = try TileGrid(micronsPerPixel: micronsPerPixel, size: size, minimumTissue: minimumTissue)
            .positions(slideWidth: reader.levels[0].width, slideHeight: reader.levels[0].height,
                       slideMicronsPerPixel: reader.micronsPerPixel, mask: slide.mask, path: slide.path)
        if positions.count > maximumTiles { positions = (0..<maximumTiles).map { positions[$0 * positions.count / maximumTiles] } }
        guard !positions.isEmpty else { throw StageError("\(slide): no tissue tiles at min_tissue \(minimumTissue)") }
        let cropper = MultiScaleCropper(scales: [micronsPerPixel], size: size)
        try cropper.validate(reader)
        let dim = model.config.outputWidth
        var embeddings = Tensor(zeros: [positions.count, dim])
        var rng = RandomGenerator(seed: 0)
        for start in stride(from: 0, to: positions.count, by: 32) {
            if context.isStopping { return }
            let chunk = Array(positions[start..<min(positions.count, start + 32)])
            let images = Augmentation.evaluation.batch(try chunk.map { try cropper.crops(reader, at: $0)[0].image }, size: size, using: &rng)
            lock.lock()  // layers keep per-call state: one forward at a time
            let tokens = model.forward(images, grid: model.fullGrid(batch: chunk.count), training: false, using: &rng)
            lock.unlock()
            let pooled = tokens.mean(alongAxis: 1)
            for i in 0..<chunk.count { for j in 0..<dim { embeddings.scalars[(start + i) * dim + j] = pooled.scalars[i * dim + j] } }
        }
        try FileManager.default.createDirectory(at: cacheFolder, withIntermediateDirectories: true)
        var saved = SafeTensorsFile()
        saved.set("embeddings", embeddings)
        try saved.write(to: file)
        context.count("\(name).embeddings_computed")
        context.count("\(name).tiles", positions.count)
        lock.withLock { bags.append((slide, embeddings)) }
    }

    func finish(_ context: StageContext<Never>) throws {
        let all = lock.withLock { bags.sorted { $0.slide.path < $1.slide.path } }
        let usable = all.filter { survival ? ($0.slide.time != nil && $0.slide.event != nil) : $0.slide.label != nil }
        context.count("\(name).slides_with_targets", usable.count)
        guard usable.count >= 2 else {
            throw StageError("'\(name)' needs at least two slides with \(survival ? "time and event" : "a label") in the labels CSV; found \(usable.count) of \(all.count)")
        }
        let classes = Array(Set(usable.compactMap(\.slide.label))).sorted()
        if !survival && classes.count < 2 { throw StageError("'\(name)' needs at least two slide classes; found \(classes)") }
        // Folds over patients (a slide without a patient is its own patient).
        let patients = Array(Set(usable.map { $0.slide.patient ?? $0.slide.path })).sorted()
        var rng = RandomGenerator(seed: seed)
        let order = rng.permutation(patients.count)
        let k = min(folds, patients.count)
        var foldOf: [String: Int] = [:]
        for (rank, index) in order.enumerated() { foldOf[patients[index]] = rank % k }
        var outputs = [[Double]](repeating: [], count: usable.count)
        for fold in 0..<k {
            let trainIndices = usable.indices.filter { foldOf[usable[$0].slide.patient ?? usable[$0].slide.path] != fold }
            let testIndices = usable.indices.filter { foldOf[usable[$0].slide.patient ?? usable[$0].slide.path] == fold }
            let model = try train(usable, trainIndices, classes: classes, rng: &rng)
            for i in testIndices { outputs[i] = model.forward(usable[i].embeddings).scalars.map(Double.init) }
        }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var csv = "slide,patient,fold," + (survival ? "time,event,risk" : "label," + classes.map { "p_\($0)" }.joined(separator: ",")) + "\n"
        if survival {
            let risks = outputs.map { $0[0] }
            if let c = SurvivalMetrics.concordanceIndex(times: usable.map { $0.slide.time! }, events: usable.map { $0.slide.event! }, risks: risks) {
                context.record(metric: "\(name).cv_c_index", c)
            }
            for (i, bag) in usable.enumerated() {
                csv += "\(bag.slide.path),\(bag.slide.patient ?? ""),\(foldOf[bag.slide.patient ?? bag.slide.path]!),\(bag.slide.time!),\(bag.slide.event! ? 1 : 0),\(risks[i])\n"
            }
        } else {
            let probabilities = Probabilities.rows(Tensor(shape: [outputs.count, classes.count], scalars: outputs.joined().map(Float.init)))
            let truth = usable.map { classes.firstIndex(of: $0.slide.label!)! }
            let metrics = ClassificationMetrics(truth: truth, predicted: probabilities.map(Probabilities.argmax), classes: classes.count)
            context.record(metric: "\(name).cv_accuracy", metrics.accuracy)
            context.record(metric: "\(name).cv_balanced_accuracy", metrics.balancedAccuracy)
            if let auc = classes.count == 2 ? RankingMetrics.rocAUC(positive: truth.map { $0 == 1 }, scores: probabilities.map { $0[1] })
                                             : RankingMetrics.macroRocAUC(truth: truth, probabilities: probabilities) {
                context.record(metric: "\(name).cv_auc", auc)
            }
            for (i, bag) in usable.enumerated() {
                csv += "\(bag.slide.path),\(bag.slide.patient ?? ""),\(foldOf[bag.slide.patient ?? bag.slide.path]!),\(bag.slide.label!),"
                    + probabilities[i].map { String(format: "%.5f", $0) }.joined(separator: ",") + "\n"
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
    private func train(_ bags: [(slide: SlideItem, embeddings: Tensor)], _ indices: [Int], classes: [String],
                       rng: inout RandomGenerator) throws -> AttentionMIL {
        let dim = bags[0].embeddings.shape[1]
        let model = AttentionMIL(dim: dim, hidden: hidden, outputs: survival ? 1 : classes.count, using: &rng)
        var settings = TrainingSettings(schedule: CosineSchedule(baseRate: learningRate, minimumRate: learningRate, warmupSteps: 0, totalSteps: epochs))
        settings.seed = rng.next()
        let trainer = Trainer(model: model, settings: settings)
        for _ in 0..<epochs {
            if survival {
                let risks = indices.map { Double(model.forward(bags[$0].embeddings).scalars[0]) }
                guard let (loss, gradient) = CoxLoss.loss(risks: risks, times: indices.map { bags[$0].slide.time! }, events: indices.map { bags[$0].slide.event! }) else { break }
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
                        let (loss, g) = CrossEntropy.loss(logits: model.forward(bags[i].embeddings), labels: [classes.firstIndex(of: bags[i].slide.label!)!])
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
