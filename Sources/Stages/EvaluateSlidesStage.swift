import Distributed
import Flow
import Foundation
import Randomness
import Slides
import SSMamba
import Tensors
import Tiling

/// `evaluate_slides`: evaluation of slides with a fine-tuned classifier, on the tiles of the
/// flow's own tile stream (tissue → tiles → stain → cache: exactly the preprocessing training saw).
/// It keeps a reference per tile (cache key, grid cell, tissue fraction, effective µm/px: about 64 bytes, never
/// pixels), and once its input has ended and the classifier exists it streams each slide's tiles
/// from the cache in batches, giving `<slide>.tiles.csv`, `<slide>.predictions.geojson`, the
/// per-class probability map as a float32 OME-TIFF pyramid that lies over the slide at its physical
/// size (`<slide>.probabilities.ome.tif`; with overlapping tiles each pixel averages the tiles over
/// it), one class's map in colour as a pyramidal TIFF OpenSlide reads (`<slide>.heatmap.tif`), the
/// slide's thumbnail with that map blended in and a legend (`<slide>.overlay.png`), and a row of
/// `slide_scores.csv` (mean class probabilities over the tiles).
/// Waiting for the classifier only after its input has ended is what lets one flow train and
/// evaluate on one tile stream without the two halves blocking each other.
final class EvaluateSlidesStage: Stage, @unchecked Sendable {
    /// A tile's place on its slide's grid, tissue fraction and effective µm/px.
    typealias Cell = (column: Int32, row: Int32, tissue: Float, effective: Float)
    typealias Output = Never
    let name: String
    let checkpoint: CheckpointSource
    let selection: SlideTileSelection
    let batchSize: Int, readers: Int
    /// Slides evaluated at once (the step's `workers`): the classifier's evaluation forward stores
    /// nothing, so one model serves every thread.
    let workers: Int
    let heatmapClass: String?
    let folder: URL
    let artifacts: Artifacts
    private let lock = NSLock()
    private var tiles = TrainingSet()
    private var cells: [Cell] = []
    private var frames: [String: GridFrame] = [:]
    /// The processes sharing out the slides under mpirun/srun (nil: this one alone).
    let group: Communicator?

    /// What one rank evaluated: its rows of the slide scores and its failed slides.
    struct SlideShare: Codable {
        let rows: [String]
        let failures: [FailureRecord]
    }

    init(_ p: EvaluateSlidesKind.Parameters, checkpoint: CheckpointSource, _ step: StepAssembly) throws {
        name = step.name
        self.checkpoint = checkpoint
        selection = SlideTileSelection(stage: name, micronsPerPixel: p.mpp, minimumTissue: p.minTissue)
        batchSize = p.batch
        readers = p.readers
        workers = step.step.workers
        heatmapClass = p.heatmapClass
        folder = step.runFolder.appendingPathComponent(name)
        artifacts = step.artifacts
        group = try DataParallel.trainingGroup()
    }

    /// Takes the reference of a tile of the chosen scale (`mpp`, or each position's first crop).
    func process(_ tile: Tile, _ context: StageContext<Never>) throws {
        guard let (entry, frame) = try selection.select(tile, context) else { return }
        try lock.withLock {
            try tiles.append(TrainingTile(entry: entry, label: tile.label, source: tile.source))
            cells.append((Int32(tile.column), Int32(tile.row), Float(tile.tissueFraction), Float(tile.effectiveMicronsPerPixel)))
            frames[tile.source] = frame
        }
    }

    func finish(_ context: StageContext<Never>) throws {
        let (tiles, cells, frames) = lock.withLock { (self.tiles, self.cells, self.frames) }
        guard !tiles.isEmpty else { return }
        let url = try checkpoint.url(artifacts, isStopping: { context.isStopping })
        let saved = try Checkpoint.read(from: url)
        var rng = RandomGenerator(seed: 0)
        let model = try Classifier(config: saved.manifest.model, using: &rng)
        try model.loadStateDictionary(saved.weights, source: url.path)
        let classes = saved.manifest.notes["classes"]?.split(separator: ",").map(String.init) ?? (0..<saved.manifest.model.classes).map { "class\($0)" }
        if let heatmapClass, !classes.contains(heatmapClass) {
            throw StageError("heatmap_class '\(heatmapClass)' is not one of the model's classes: \(classes.joined(separator: ", "))")
        }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        // Slide by slide, each slide's tiles row by row; under mpirun/srun rank r takes slides
        // r, r + R, r + 2R, … and the slide scores are gathered.
        let bySlide = Dictionary(grouping: 0..<tiles.count, by: tiles.source)
        let rank = group?.rank ?? 0, ranks = group?.size ?? 1
        let work = SlideWork(slides: bySlide.keys.sorted().enumerated().filter { $0.offset % ranks == rank }.map(\.element))
        let shared = SharedForEvaluation(model: model)
        // `workers` threads take the slides in order, each evaluating one slide at a time.
        let started = Date()
        DispatchQueue.concurrentPerform(iterations: max(1, min(workers, work.slides.count))) { _ in
            while let slide = work.take(), !context.isStopping {
                let order = bySlide[slide]!.sorted { (cells[$0].row, cells[$0].column) < (cells[$1].row, cells[$1].column) }
                do {
                    work.scored(try evaluate(slide, tiles.subset(order), cells: order.map { cells[$0] }, frame: frames[slide]!,
                                             model: shared.model, classes: classes, context: context), tiles: order.count)
                    context.count("\(name).slides")
                } catch {
                    if context.isStopping { return }
                    context.reportFailure(item: slide, reason: String(describing: error))
                    work.failed(slide, String(describing: error))
                }
            }
        }
        context.record(metric: "\(name).images_per_second", Double(work.tiles) / max(Date().timeIntervalSince(started), 1e-9))
        var scores = work.rows
        let failures = work.failures.sorted { $0.item < $1.item }  // the order of the slides, whichever thread finished first
        var firstFailure = failures.first.map { "\(($0.item as NSString).lastPathComponent): \($0.reason)" }
        if context.isStopping { return }
        if let group {
            context.count("\(name).processes", group.size)
            // Every rank's rows and failures, on every rank: the run's one slide_scores.csv, and
            // rank 0's report lists the other ranks' failed slides too.
            let shares = try DataParallel.allGather(SlideShare(rows: scores, failures: failures), group: group)
            scores = shares.flatMap(\.rows)
            for (other, share) in shares.enumerated() where other != rank {
                if group.isRoot { for failure in share.failures { context.reportFailure(item: failure.item, reason: failure.reason) } }
                context.count("\(name).slides", share.rows.count)
                if firstFailure == nil, let failure = share.failures.first {
                    firstFailure = "\((failure.item as NSString).lastPathComponent): \(failure.reason)"
                }
            }
        }
        guard !scores.isEmpty else {
            // Not one slide scored (a checkpoint that does not fit the tiles, say): the stage failed.
            throw StageError("no slide could be evaluated (\(bySlide.count) failed; the first: \(firstFailure ?? "stopped"))")
        }
        guard group?.isRoot ?? true else { return }
        let header = CSVField.line(["slide", "tiles"] + classes.map { "mean_p_\($0)" } + ["predicted"])
        try Data((header + scores.sorted().joined()).utf8).write(to: folder.appendingPathComponent("slide_scores.csv"), options: .atomic)
    }

    /// The slide, opened for its size and thumbnail: nil when it is not on this machine (evaluating
    /// from a copied cache; counted) or cannot be opened (reported as the overlay's failure).
    private func overlaySource(_ slide: String, frame: GridFrame, context: StageContext<Never>) -> SlideReader? {
        guard FileManager.default.fileExists(atPath: slide) else {
            context.count("\(name).overlays_without_slide")
            return nil
        }
        do {
            // A recorded µm/px the reader refuses does not matter here: the grid's is used.
            return try Slide.open(slide, fallbackMicronsPerPixel: frame.micronsPerPixel)
        } catch {
            context.reportFailure(item: "\(slide) (overlay picture)", reason: String(describing: error))
            return nil
        }
    }

    /// One slide: tile table, heatmap, and its row of the slide scores.
    private func evaluate(_ slide: String, _ tiles: TrainingSet, cells: [Cell], frame: GridFrame,
                          model: Classifier, classes: [String], context: StageContext<Never>) throws -> String {
        let target = heatmapClass.flatMap { classes.firstIndex(of: $0) } ?? 0
        // A tile's side in level-0 pixels.
        func side(_ cell: Cell) -> Double { Double(model.config.imageSize) * Double(cell.effective) / frame.micronsPerPixel }
        // The slide gives the map's extent and the overlay's thumbnail; evaluating from a cache
        // whose slide is not on this machine, the grid gives the extent and there is no overlay.
        let reader = overlaySource(slide, frame: frame, context: context)
        let tileSide = cells.first.map(side) ?? 0
        func gridExtent(_ count: Int) -> Int { Int((Double(max(0, count - 1)) * frame.step + tileSide).rounded(.up)) }
        let slideSize = reader.map { ($0.levels[0].width, $0.levels[0].height) } ?? (gridExtent(frame.columns), gridExtent(frame.rows))
        var map = ProbabilityMap(slideWidth: slideSize.0, slideHeight: slideSize.1, gridStep: frame.step,
                                 subdivision: ProbabilityMap.subdivision(columns: frame.columns, rows: frame.rows),
                                 slideMicronsPerPixel: frame.micronsPerPixel, classes: classes)
        let stem = ((slide as NSString).lastPathComponent as NSString).deletingPathExtension
        // Rows go straight to the files, which are moved into place when the slide is complete.
        let csv = try PartialFile(folder.appendingPathComponent("\(stem).tiles.csv"))
        csv.write(TileTable.header(extra: classes.map { "p_\($0)" }))
        let geoJSON = try PredictionsGeoJSON(folder.appendingPathComponent("\(stem).predictions.geojson"), classes: classes)
        var sums = [Double](repeating: 0, count: classes.count)
        var scored = 0
        let batches = CacheBatchReader(tiles: tiles, augmentation: .evaluation, size: model.config.imageSize, seed: 0)
        try batches.checkTileSize()
        let stream = CacheBatchStream(batches, inOrderBatchesOf: batchSize, readers: readers)
        defer { stream.stop() }
        while let batch = stream.next() {
            for (tile, reason) in batch.failures { context.reportFailure(item: tile.description, reason: reason) }
            if context.isStopping { throw StageError("the run stopped before \((slide as NSString).lastPathComponent) was evaluated") }
            guard !batch.members.isEmpty else { continue }
            var rows = ""
            for (i, probabilities) in zip(batch.members, Probabilities.rows(model.predict(batch.images))) {
                let cell = cells[i], key = tiles.key(i)
                for k in classes.indices { sums[k] += probabilities[k] }
                let row = TileTable.Row(slide: slide, column: Int(cell.column), row: Int(cell.row), scaleMicronsPerPixel: key.micronsPerPixel,
                                        effectiveMicronsPerPixel: Double(cell.effective), level0X: Int(key.x), level0Y: Int(key.y),
                                        level0Size: side(cell),
                                        tissueFraction: Double(cell.tissue), label: tiles.label(i) ?? "")
                rows += TileTable.line(row, extra: probabilities.map { String(format: "%.5f", $0) })
                geoJSON.add(x: row.level0X, y: row.level0Y, size: side(cell), column: row.column, row: row.row, probabilities: probabilities)
                map.add(level0X: Double(cell.column) * frame.step, level0Y: Double(cell.row) * frame.step, extent: side(cell), probabilities: probabilities)
            }
            csv.write(rows)
            scored += batch.members.count
            context.count("\(name).tiles", batch.members.count)
        }
        try csv.commit()
        try geoJSON.finish()
        try FloatPyramidWriter.write(planes: classes.indices.map(map.plane), names: classes, width: map.width, height: map.height,
                                     micronsPerPixel: map.micronsPerPixel, to: folder.appendingPathComponent("\(stem).probabilities.ome.tif"), tileSize: 128)
        try PyramidWriter.write(HeatmapPictures.colourMap(map, classIndex: target), to: folder.appendingPathComponent("\(stem).heatmap.tif"),
                                micronsPerPixel: map.micronsPerPixel, compression: .deflate, tileSize: 128)
        if let reader {
            // A picture only: when the thumbnail cannot be read the slide's results stand, and the
            // report names the missing overlay.
            do {
                try PNGWriter.write(try HeatmapPictures.overlay(reader, map: map, classIndex: target), to: folder.appendingPathComponent("\(stem).overlay.png"))
                context.attach(picture: "\(name)/\(stem).overlay.png", title: "\(stem): p(\(classes[target])) over the slide")
            } catch {
                context.reportFailure(item: "\(slide) (overlay picture)", reason: String(describing: error))
            }
        }
        let means = sums.map { scored == 0 ? 0 : $0 / Double(scored) }
        let predicted = classes.isEmpty ? "" : classes[Probabilities.argmax(means)]
        return CSVField.line([slide, String(scored)] + means.map { String(format: "%.5f", $0) } + [predicted])
    }
}

/// The slides one process evaluates, handed out one at a time to its threads, and what they gave.
private final class SlideWork: @unchecked Sendable {
    let slides: [String]
    private let lock = NSLock()
    private var next = 0
    private(set) var rows: [String] = []
    private(set) var failures: [FailureRecord] = []
    /// Tiles of the slides evaluated.
    private(set) var tiles = 0

    init(slides: [String]) { self.slides = slides }

    /// The next slide to evaluate, or nil when every slide is taken.
    func take() -> String? {
        lock.withLock {
            defer { next += 1 }
            return next < slides.count ? slides[next] : nil
        }
    }

    func scored(_ row: String, tiles count: Int) { lock.withLock { rows.append(row); tiles += count } }
    func failed(_ slide: String, _ reason: String) { lock.withLock { failures.append(FailureRecord(item: slide, reason: reason)) } }
}

/// A classifier shared by evaluation threads: its evaluation forward (`predict`) stores nothing
/// in the model, so threads may call it at once (nothing else of the model is used).
private struct SharedForEvaluation: @unchecked Sendable {
    let model: Classifier
}

