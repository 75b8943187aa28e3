import Flow
import Foundation
import SSMamba
import Slides
import Tensors
import Tiling

/// `pretrain`: MAMIM pretraining on the cached tiles of its input (several µm/px mixed when the
/// tiles stage gives several scales), streamed from the cache epoch by epoch (`EpochOrder`,
/// `CacheBatchStream`). Writes `<run>/<stage>/checkpoint` and reconstruction pictures.
final class PretrainStage: Stage, @unchecked Sendable {
    typealias Output = Never
    let name: String
    let config: ModelConfiguration
    let settings: MaskedPretrainingSettings
    let steps: Int, batchSize: Int, reconstructions: Int
    let learningRate: Float, warmup: Double, weightDecay: Float
    let augmentation: Augmentation
    let seed: UInt64
    let readers: Int
    let folder: URL
    let collection = TrainingTiles()
    let artifacts: Artifacts

    init(name: String, _ p: ParameterValues, seed: Int, runFolder: URL, artifacts: Artifacts) throws {
        self.name = name
        config = try ModelConfiguration.named(p.text("model"))
        var s = MaskedPretrainingSettings()
        s.maskRatio = p.number("mask_ratio")
        s.decoderDim = p.integer("decoder_dim")
        s.decoderDepth = p.integer("decoder_depth")
        s.decoderHeads = p.integer("decoder_heads")
        settings = s
        steps = p.integer("steps")
        batchSize = p.integer("batch")
        reconstructions = p.integer("reconstructions")
        learningRate = Float(p.number("lr"))
        warmup = p.number("warmup")
        weightDecay = Float(p.number("weight_decay"))
        var a = Augmentation()
        a.cropScale = p.number("crop_scale_min")...1
        augmentation = a
        self.seed = UInt64(seed)
        readers = p.integer("readers")
        folder = runFolder.appendingPathComponent(name)
        self.artifacts = artifacts
    }

    func process(_ input: Tile, _ context: StageContext<Never>) throws {
        try collection.add(input, stage: name)
    }

    func finish(_ context: StageContext<Never>) throws {
        try artifacts.produce(name) { try train(context) }
    }

    private func train(_ context: StageContext<Never>) throws -> URL {
        let tiles = collection.all
        context.count("\(name).tiles", tiles.count)
        guard !tiles.isEmpty else { throw StageError("'\(name)' received no tiles to pretrain on") }
        var rng = RandomGenerator(seed: seed)
        let model = try MaskedAutoencoder(config: config, settings: settings, using: &rng)
        var optimizerSettings = AdamW.Settings()
        optimizerSettings.beta2 = 0.95
        optimizerSettings.weightDecay = weightDecay
        let optimizer = AdamW(settings: optimizerSettings)
        let schedule = CosineSchedule(baseRate: learningRate, warmupSteps: max(1, Int(warmup * Double(steps))), totalSteps: steps)
        let order = EpochOrder(count: tiles.count, seed: seed &+ 101)
        let reader = CacheBatchReader(tiles: tiles, augmentation: augmentation, size: config.imageSize, seed: seed &+ 202)
        let stream = CacheBatchStream(reader, count: steps, plan: { [batchSize] in order.batch($0, size: batchSize) }, readers: readers)
        defer { stream.stop() }
        var recent: [Float] = []
        var imagesSeen = 0
        let started = Date()
        for step in 0..<steps {
            if context.isStopping { break }
            guard let batch = stream.next() else { break }
            for (tile, reason) in batch.failures { context.reportFailure(item: tile.description, reason: reason) }
            context.count("\(name).tiles_read", batch.members.count)
            guard !batch.members.isEmpty, !context.isStopping else { continue }
            model.zeroGradients()
            let visible = model.randomVisibleGrid(batch: batch.members.count, using: &rng)
            let (loss, _) = model.loss(batch.images, visible: visible, training: true, using: &rng)
            guard loss.isFinite else { throw StageError("'\(name)': the loss became \(loss) at step \(step); lower `lr`") }
            model.backward()
            clipGradients(model.parameters, maxNorm: 1)
            optimizer.update(model.parameters, learningRate: schedule.rate(atStep: step))
            imagesSeen += batch.members.count
            recent.append(loss)
            if step == 9 { context.record(metric: "\(name).loss_first10", Double(recent.reduce(0, +) / 10)) }
            if recent.count == 10 || step == steps - 1 {
                context.record(metric: "\(name).loss", Double(recent.reduce(0, +) / Float(recent.count)))
                recent.removeAll()
            }
            context.count("\(name).steps")
        }
        context.record(metric: "\(name).epochs", Double(imagesSeen) / Double(tiles.count))
        context.record(metric: "\(name).waited_for_data_seconds", stream.waitedSeconds)
        context.record(metric: "\(name).images_per_second", Double(imagesSeen) / max(Date().timeIntervalSince(started), 1e-9))
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var manifest = Checkpoint.Manifest(model: config)
        manifest.notes = ["kind": "mamim", "mask_ratio": "\(settings.maskRatio)", "decoder_dim": "\(settings.decoderDim)",
                          "decoder_depth": "\(settings.decoderDepth)", "tiles": "\(tiles.count)", "steps": "\(steps)"]
        let url = folder.appendingPathComponent("checkpoint")
        try Checkpoint(manifest: manifest, weights: model.stateDictionary()).write(to: url)
        try writeReconstructions(model, tiles: Array(tiles.prefix(reconstructions)), context: context)
        return url
    }

    /// For each tile: the masked input (hidden patches grey), the reconstruction (visible patches
    /// as given, hidden ones predicted, un-normalised with the true patch statistics) and the original.
    private func writeReconstructions(_ model: MaskedAutoencoder, tiles: [TrainingTile], context: StageContext<Never>) throws {
        guard !tiles.isEmpty else { return }
        let size = config.imageSize
        let read = CacheBatchReader(tiles: tiles, augmentation: .evaluation, size: size, seed: seed).batch(0, of: Array(tiles.indices))
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
