import Flow
import Foundation
import SSMamba
import Slides
import Tensors
import Tiling

/// `evaluate_slides`: streaming evaluation of new slides with a fine-tuned classifier. For each
/// slide, the tissue grid is read and classified batch by batch (memory is the batch and one
/// probability per grid cell, whatever the slide's size), giving `<slide>.tiles.csv`, a heatmap
/// of one class's probability as a pyramidal TIFF aligned with the slide (one pixel per tile, the
/// µm/px set accordingly) and a PNG preview, and a row of `slide_scores.csv` (mean class
/// probabilities over the tissue tiles).
final class EvaluateSlidesStage: Stage, @unchecked Sendable {
    typealias Output = Never
    let name: String
    let checkpoint: CheckpointSource
    let micronsPerPixel: Double, minimumTissue: Double
    let batchSize: Int
    let heatmapClass: String?
    let folder: URL
    let artifacts: Artifacts
    private let lock = NSLock()
    private let forwardLock = NSLock()
    private var scores: [String] = []
    private var classNames: [String] = []
    private var loaded: Classifier?

    init(name: String, _ p: ParameterValues, checkpoint: CheckpointSource, runFolder: URL, artifacts: Artifacts) {
        self.name = name
        self.checkpoint = checkpoint
        micronsPerPixel = p.number("mpp")
        minimumTissue = p.number("min_tissue")
        batchSize = p.integer("batch")
        heatmapClass = p.optionalText("heatmap_class")
        folder = runFolder.appendingPathComponent(name)
        self.artifacts = artifacts
    }

    /// The classifier, loaded once (from a fine-tuning step of this flow, or a checkpoint folder).
    private func model(_ context: StageContext<Never>) throws -> (Classifier, [String]) {
        try lock.withLock {
            if let loaded { return (loaded, classNames) }
            let url = try checkpoint.url(artifacts, isStopping: { context.isStopping })
            let saved = try Checkpoint.read(from: url)
            var rng = RandomGenerator(seed: 0)
            let model = try Classifier(config: saved.manifest.model, using: &rng)
            try model.loadStateDictionary(saved.weights, source: url.path)
            let names = saved.manifest.notes["classes"]?.split(separator: ",").map(String.init)
                ?? (0..<saved.manifest.model.classes).map { "class\($0)" }
            loaded = model
            classNames = names
            return (model, names)
        }
    }

    func process(_ slide: SlideItem, _ context: StageContext<Never>) throws {
        let (model, classes) = try model(context)
        let size = model.config.imageSize
        let target = heatmapClass.flatMap { classes.firstIndex(of: $0) } ?? 0
        if let heatmapClass, !classes.contains(heatmapClass) {
            throw StageError("heatmap_class '\(heatmapClass)' is not one of the model's classes: \(classes.joined(separator: ", "))")
        }
        let reader = slide.reader
        let grid = TileGrid(micronsPerPixel: micronsPerPixel, size: size, minimumTissue: minimumTissue)
        let positions = try grid.positions(slideWidth: reader.levels[0].width, slideHeight: reader.levels[0].height,
                                           slideMicronsPerPixel: reader.micronsPerPixel, mask: slide.mask, path: slide.path)
        let cropper = MultiScaleCropper(scales: [micronsPerPixel], size: size)
        try cropper.validate(reader)
        let base = reader.micronsPerPixel!
        let extent = Double(size) * micronsPerPixel / base
        let columns = max(1, Int(Double(reader.levels[0].width) / extent)), rows = max(1, Int(Double(reader.levels[0].height) / extent))
        var heat = [Float](repeating: -1, count: columns * rows)  // −1: no tile
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let stem = ((slide.path as NSString).lastPathComponent as NSString).deletingPathExtension
        // Rows go straight to the file (written under a temporary name, renamed when complete).
        let csvURL = folder.appendingPathComponent("\(stem).tiles.csv")
        let partial = folder.appendingPathComponent(".\(stem).tiles.csv.partial")
        guard FileManager.default.createFile(atPath: partial.path, contents: nil), let csv = FileHandle(forWritingAtPath: partial.path) else {
            throw StageError("cannot write \(partial.path): check that the output folder is writable and the disk has space")
        }
        var complete = false
        defer {
            if !complete {  // a failed or stopped slide leaves no half-written table behind
                try? csv.close()
                try? FileManager.default.removeItem(at: partial)
            }
        }
        csv.write(Data(("column,row,level0_x,level0_y,tissue_fraction," + classes.map { "p_\($0)" }.joined(separator: ",") + "\n").utf8))
        var sums = [Double](repeating: 0, count: classes.count)
        var rng = RandomGenerator(seed: 0)
        for start in stride(from: 0, to: positions.count, by: batchSize) {
            if context.isStopping { return }
            let chunk = Array(positions[start..<min(positions.count, start + batchSize)])
            let images = try chunk.map { try cropper.crops(reader, at: $0)[0].image }
            let batch = Augmentation.evaluation.batch(images, size: size, using: &rng)
            forwardLock.lock()  // layers keep per-call state: one forward at a time when workers > 1
            let logits = model.predict(batch)
            forwardLock.unlock()
            var rows = ""
            for (position, probabilities) in zip(chunk, Probabilities.rows(logits)) {
                heat[position.row * columns + position.column] = Float(probabilities[target])
                for k in classes.indices { sums[k] += probabilities[k] }
                rows += String(format: "%d,%d,%.0f,%.0f,%.4f,", position.column, position.row, position.level0X, position.level0Y, position.tissueFraction)
                    + probabilities.map { String(format: "%.5f", $0) }.joined(separator: ",") + "\n"
            }
            csv.write(Data(rows.utf8))
            context.count("\(name).tiles", chunk.count)
        }
        try csv.close()
        _ = try? FileManager.default.removeItem(at: csvURL)
        try FileManager.default.moveItem(at: partial, to: csvURL)
        complete = true
        let heatmap = Self.colourMap(heat, columns: columns, rows: rows)
        try PyramidWriter.write(heatmap, to: folder.appendingPathComponent("\(stem).heatmap.tif"), micronsPerPixel: base * extent, compression: .deflate)
        try PNGWriter.write(Self.enlarge(heatmap, toAtLeast: 512), to: folder.appendingPathComponent("\(stem).heatmap.png"))
        let means = sums.map { positions.isEmpty ? 0 : $0 / Double(positions.count) }
        let predicted = classes.isEmpty ? "" : classes[Probabilities.argmax(means)]
        let row = "\(slide.path),\(positions.count)," + means.map { String(format: "%.5f", $0) }.joined(separator: ",") + ",\(predicted)"
        lock.withLock { scores.append(row) }
        context.count("\(name).slides")
    }

    func finish(_ context: StageContext<Never>) throws {
        let (rows, classes): ([String], [String]) = lock.withLock { (scores.sorted(), classNames) }
        guard !rows.isEmpty else { return }
        let header = "slide,tiles," + classes.map { "mean_p_\($0)" }.joined(separator: ",") + ",predicted\n"
        try Data((header + rows.joined(separator: "\n") + "\n").utf8).write(to: folder.appendingPathComponent("slide_scores.csv"), options: .atomic)
    }

    /// Probability 0…1 → blue…red through white-ish yellow; cells without a tile are light grey.
    static func colourMap(_ values: [Float], columns: Int, rows: Int) -> RGBImage {
        var pixels = [UInt8](repeating: 230, count: columns * rows * 3)
        for (i, v) in values.enumerated() where v >= 0 {
            let t = max(0, min(1, v))
            let r = t < 0.5 ? 2 * t : 1, b = t < 0.5 ? 1 : 2 * (1 - t), g = 1 - abs(2 * t - 1) * 0.8
            pixels[3 * i] = UInt8(r * 255); pixels[3 * i + 1] = UInt8(g * 255); pixels[3 * i + 2] = UInt8(b * 255)
        }
        return RGBImage(width: columns, height: rows, pixels: pixels)
    }

    /// Nearest-neighbour enlargement by a whole factor, for a visible preview.
    static func enlarge(_ image: RGBImage, toAtLeast side: Int) -> RGBImage {
        let factor = max(1, side / max(1, max(image.width, image.height)))
        guard factor > 1 else { return image }
        let w = image.width * factor, h = image.height * factor
        var pixels = [UInt8](repeating: 0, count: w * h * 3)
        for y in 0..<h { for x in 0..<w { for c in 0..<3 { pixels[(y * w + x) * 3 + c] = image.pixels[((y / factor) * image.width + x / factor) * 3 + c] } } }
        return RGBImage(width: w, height: h, pixels: pixels)
    }
}
