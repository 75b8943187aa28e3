import Distributed
import Flow
import Foundation
import Randomness
import Slides
import SSMamba
import Tensors
import Tiling

/// `pretrain`: MAMIM pretraining on the cached tiles of its input (several µm/px mixed when the
/// tiles stage gives several scales), streamed from the cache epoch by epoch (`EpochOrder`,
/// `CacheBatchStream`). Writes `<run>/<stage>/checkpoint` and reconstruction pictures, and keeps a
/// resumable `last` checkpoint and `train_log.csv` (`TrainingRecord`).
final class PretrainStage: Stage, @unchecked Sendable {
    typealias Output = Never
    let name: String
    let config: ModelConfiguration
    let settings: MaskedPretrainingSettings
    let steps: Int, batchSize: Int, reconstructions: Int
    let learningRate: Float, warmup: Double, weightDecay: Float
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

    init(_ p: PretrainKind.Parameters, _ step: StepAssembly) throws {
        name = step.name
        checkpointEvery = p.checkpointEvery
        var model = try p.model.configuration()
        if p.model.dropPath == nil { model.dropPathRate = 0 }  // no drop-path in pretraining unless asked for
        config = model
        var s = MaskedPretrainingSettings()
        s.maskRatio = p.maskRatio
        s.masking = p.masking
        s.decoderDim = p.decoderDim
        s.decoderDepth = p.decoderDepth
        s.decoderHeads = p.decoderHeads
        if let ratio = p.decoderMlpRatio { s.decoderMlpRatio = ratio }
        settings = s
        steps = p.steps
        batchSize = p.batch
        reconstructions = p.reconstructions
        learningRate = Float(p.lr)
        warmup = p.warmup
        weightDecay = Float(p.weightDecay)
        augmentation = Augmentation(p)
        seed = UInt64(step.seed)
        readers = p.readers
        precision = TrainingPrecision.resolve(p.precision, stage: step.name)
        askedReplicas = p.replicas
        folder = step.runFolder.appendingPathComponent(name)
        record = try TrainingRecord(folder: folder, stage: "pretrain", parameters: step.step.parameters, ignoring: ["readers", "checkpoint_every", "reconstructions", "replicas"],
                                    seed: seed, resume: step.resume)
        group = try DataParallel.trainingGroup()
        artifacts = step.artifacts
    }

    func process(_ input: Tile, _ context: StageContext<Never>) throws {
        try collection.add(input, stage: name)
    }

    func finish(_ context: StageContext<Never>) throws {
        try artifacts.produce(name) { try train(context) }
    }

    private func train(_ context: StageContext<Never>) throws -> URL {
        let tiles = collection.take()
        context.count("\(name).tiles", tiles.count)
        guard !tiles.isEmpty else { throw StageError("'\(name)' received no tiles to pretrain on") }
        var initialisation = RandomGenerator(seed: seed)
        let model = try MaskedAutoencoder(config: config, settings: settings, using: &initialisation)
        var training = TrainingSettings(schedule: CosineSchedule(baseRate: learningRate, warmupSteps: max(1, Int(warmup * Double(steps))), totalSteps: steps))
        training.optimizer.beta2 = 0.95
        training.optimizer.weightDecay = weightDecay
        training.seed = seed &+ 1
        training.precision = precision
        let trainers = try DataParallel.replicas(of: model, asked: askedReplicas, batch: batchSize, group: group,
                                                 copy: { try MaskedAutoencoder(config: config, settings: settings, using: &initialisation) },
                                                 trainer: { Trainer(model: $0, settings: training) })
        let trainer = trainers.main
        let (start, _) = try record.start(trainer, tiles: tiles)
        if start > 0 {
            try trainers.synchronizeFromMain(config: config)
            context.count("\(name).resumed_at_step", start)
        }
        context.count("\(name).replicas", trainers.count)
        let order = EpochOrder(count: tiles.count, seed: seed &+ 101)
        // Under mpirun/srun each process reads its share of every batch; gradients are averaged.
        let (plan, offset) = try DataParallel.share({ [batchSize] in order.batch($0, size: batchSize) }, batch: batchSize, stage: name)
        trainers.sampleOffset = offset
        if let group { context.count("\(name).processes", group.size) }
        let reader = CacheBatchReader(tiles: tiles, augmentation: augmentation, size: config.imageSize, seed: seed &+ 202, positionOffset: offset)
        try reader.checkTileSize()
        let stream = CacheBatchStream(reader, first: start, count: steps, plan: plan, readers: readers)
        defer { stream.stop() }
        var recent: [Float] = []
        var imagesSeen = 0
        var (position, saved) = (start, start)
        let started = Date()
        for step in start..<steps {
            if context.isStopping { break }
            guard let batch = stream.next() else { break }
            for (tile, reason) in batch.failures { context.reportFailure(item: tile.description, reason: reason) }
            context.count("\(name).tiles_read", batch.members.count)
            guard !context.isStopping else { break }
            if !batch.members.isEmpty || group != nil {  // every process steps, even with an empty share
                let rate = trainer.learningRate
                let loss = try trainers.step(samples: batch.members.count) { replica, range, rng, scale in
                    let model = trainers.trainers[replica].model
                    let visible = model.randomVisibleGrid(batch: range.count, using: &rng)
                    let loss = model.loss(batch.images.samples(range), visible: visible, training: true, using: &rng).loss
                    model.backward(scale: scale)
                    return loss
                }
                try record.log(step: step, loss: loss, learningRate: rate)
                imagesSeen += batch.members.count
                recent.append(loss)
                if step == 9 { context.record(metric: "\(name).loss_first10", Double(recent.reduce(0, +) / 10)) }
                if recent.count == 10 || step == steps - 1 {
                    context.record(metric: "\(name).loss", Double(recent.reduce(0, +) / Float(recent.count)))
                    recent.removeAll()
                }
                context.count("\(name).steps")
            }
            position = step + 1
            if position % checkpointEvery == 0 || position == steps {
                try record.save(trainer, config: config, position: position, notes: ["kind": "mamim"])
                saved = position
            }
        }
        if context.isStopping {
            if position > saved { try record.save(trainer, config: config, position: position, notes: ["kind": "mamim"]) }
            throw StageError("'\(name)': the run stopped at step \(position) of \(steps); `ssmamba run FLOW --resume` continues from \(record.lastURL.path)")
        }
        context.record(metric: "\(name).epochs", Double(steps * batchSize) / Double(tiles.count))
        context.record(metric: "\(name).waited_for_data_seconds", stream.waitedSeconds)
        try DataParallel.recordPerRank(stage: name, group: group, images: imagesSeen, waitedForData: stream.waitedSeconds,
                                       synchronizing: trainers.synchronizationSeconds, context: context)
        context.record(metric: "\(name).images_per_second", Double(imagesSeen) / max(Date().timeIntervalSince(started), 1e-9))
        let url = folder.appendingPathComponent("checkpoint")
        guard record.writes else { return url }  // rank 0 writes the checkpoint and the pictures
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var manifest = Checkpoint.Manifest(model: config)
        manifest.notes = ["kind": "mamim", "mask_ratio": "\(settings.maskRatio)", "masking": settings.masking.rawValue, "decoder_dim": "\(settings.decoderDim)",
                          "decoder_depth": "\(settings.decoderDepth)", "tiles": "\(tiles.count)", "steps": "\(steps)"]
        try Checkpoint(manifest: manifest, weights: model.stateDictionary()).write(to: url)
        try writeReconstructions(model, tiles: tiles.subset(Array(0..<min(reconstructions, tiles.count))), context: context)
        try ResultPictures.loss(log: record.logURL, into: folder, stage: name, title: "MAMIM reconstruction loss", context: context)
        return url
    }

    /// For each tile: the masked input (hidden patches grey), the reconstruction (visible patches
    /// as given, hidden ones predicted, un-normalised with the true patch statistics) and the original.
    private func writeReconstructions(_ model: MaskedAutoencoder, tiles: TrainingSet, context: StageContext<Never>) throws {
        guard !tiles.isEmpty else { return }
        let size = config.imageSize
        let read = CacheBatchReader(tiles: tiles, augmentation: .evaluation, size: size, seed: seed).batch(0, of: Array(0..<tiles.count))
        for (tile, reason) in read.failures { context.reportFailure(item: tile.description, reason: reason) }
        guard !read.members.isEmpty else { return }
        let images = read.images
        var rng = RandomGenerator(seed: seed &+ 1)
        let visible = model.randomVisibleGrid(batch: read.members.count, using: &rng)
        let reconstructed = model.reconstruct(images, visible: visible)
        let masked = MaskedAutoencoder.replacingHiddenPatches(images, visible: visible, patch: config.patchSize) { _, _, _, c in
            (0.5 - Augmentation.mean[c]) / Augmentation.std[c]  // mid grey
        }
        for b in 0..<read.members.count {
            let parts = [Augmentation.image(masked, index: b), Augmentation.image(reconstructed, index: b), Augmentation.image(images, index: b)]
            var strip = RGBImage(width: size * 3 + 8, height: size, filling: (255, 255, 255))
            for (k, part) in parts.enumerated() {
                for y in 0..<size {
                    let to = (y * strip.width + k * (size + 4)) * 3
                    strip.pixels.replaceSubrange(to..<(to + size * 3), with: part.pixels[(y * size * 3)..<((y + 1) * size * 3)])
                }
            }
            try PNGWriter.write(strip, to: folder.appendingPathComponent("reconstruction-\(b).png"))
        }
    }
}
