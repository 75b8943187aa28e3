import Flow
import Foundation
import SSMamba
import Slides
import Stages
import TileCache
import Tiling
import XCTest

/// Flow files run end to end on real files: a synthetic pyramidal slide with a known tissue
/// layout, a real LMDB cache, real threads.
final class FlowRunTests: XCTestCase {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("flow-run-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    /// A 2048×1536 slide at 0.5 µm/px whose left half is tissue-like stripes and right half glass.
    func writeSlide(_ name: String) throws -> String {
        let width = 2048, height = 1536
        var pixels = [UInt8](repeating: 243, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<(width / 2) {
                let o = (y * width + x) * 3
                let dark = ((x / 24) + (y / 24)) % 3 == 0
                let jitter = UInt8((x &* 31 &+ y &* 17) % 9)
                pixels[o] = (dark ? 120 : 225) + jitter; pixels[o + 1] = (dark ? 70 : 150) + jitter; pixels[o + 2] = (dark ? 160 : 195) + jitter
            }
        }
        let url = folder.appendingPathComponent(name)
        try PyramidWriter.write(RGBImage(width: width, height: height, pixels: pixels), to: url, micronsPerPixel: 0.5, compression: .jpeg(quality: 92))
        return url.path
    }

    func flowText(slides: String, cache: String, method: String = "reinhard", extra: String = "") -> String {
        """
        flow: test
        output: \(folder.appendingPathComponent("run").path)
        source:
          kind: slides
          path: \(slides)
          pattern: "*.tif"
        stages:
          - stage: tissue
          - stage: tiles
            mpp: 1.0
            size: 64
            scales: [1.0, 2.0]
            min_tissue: 0.9
            workers: 2
          - stage: stain
            method: \(method)
            target: \(Self.repository.appendingPathComponent("Tests/TilingTests/Fixtures/stain/target.png").path)
          - stage: cache
            path: \(cache)
            batch: 7
        \(extra)
        """
    }

    func run(_ text: String, overrides: [String] = []) throws -> FlowReport {
        let path = folder.appendingPathComponent("flow-\(UUID()).yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return try FlowRunner.run(FlowRunner.load(path, overrides: overrides), printer: nil).report
    }

    func testWarmRerunAndParameterChange() throws {
        _ = try writeSlide("a.tif")
        _ = try writeSlide("b.tif")
        let cache = folder.appendingPathComponent("cache").path
        let first = try run(flowText(slides: folder.path, cache: cache))
        XCTAssertEqual(first.status, .completed)
        let positions = first.counters["tiles.positions"] ?? 0
        // Left half tissue: 1024×1536 level-0 px at 1 µm/px → 64-px tiles of 128 level-0 px: 8 × 12 per slide,
        // less the column on the tissue edge.
        XCTAssertGreaterThanOrEqual(positions, 2 * 7 * 12)
        XCTAssertLessThanOrEqual(positions, 2 * 8 * 12)
        XCTAssertEqual(first.counters["cache.misses"], 2 * positions)
        XCTAssertEqual(first.counters["cache.written"], 2 * positions)
        XCTAssertNil(first.counters["cache.hits"])
        let store = try TileStore(path: cache, readOnly: true)
        XCTAssertEqual(try store.statistics().records, 2 * positions)
        XCTAssertEqual(try store.verify().count, 0)

        let again = try run(flowText(slides: folder.path, cache: cache))
        XCTAssertEqual(again.counters["cache.hits"], 2 * positions)
        XCTAssertNil(again.counters["cache.misses"])
        XCTAssertNil(again.counters["stain.normalized"], "cached tiles are neither read nor normalized again")

        // A different deterministic parameter: the old entries are not hit.
        let changed = try run(flowText(slides: folder.path, cache: cache, method: "macenko"))
        XCTAssertEqual(changed.counters["cache.misses"], 2 * positions)
        XCTAssertEqual(try TileStore(path: cache, readOnly: true).statistics().records, 4 * positions)
    }

    /// A VMS slide's pixels live in JPEG stripes its index names: a stripe rewritten under an
    /// unchanged index is another source, so its tiles are made again, not served stale.
    func testARewrittenStripeOfAVMSSlideIsNotServedFromTheCache() throws {
        let sample = Self.repository.appendingPathComponent("data/samples/hamamatsu-vms")
        guard FileManager.default.fileExists(atPath: sample.path) else {
            throw XCTSkip("sample hamamatsu-vms is missing: run `make samples` (make test does it)")
        }
        let slides = folder.appendingPathComponent("vms")
        try FileManager.default.copyItem(at: sample, to: slides)
        let reader = try Slide.open(slides.appendingPathComponent("hgsc_nest.vms").path)
        XCTAssertEqual(reader.files.map { ($0 as NSString).lastPathComponent },
                       ["hgsc_nest.vms", "hgsc_nest_macro.jpg", "hgsc_nest_map.jpg", "hgsc_nest_x0.jpg", "hgsc_nest_x1.jpg"])
        let cache = folder.appendingPathComponent("cache").path
        let text = """
            flow: vms
            output: \(folder.appendingPathComponent("run").path)
            source:
              kind: slides
              path: \(slides.path)
              pattern: "*.vms"
            stages:
              - stage: tissue
              - stage: tiles
                mpp: 1.0
                size: 64
                min_tissue: 0.5
              - stage: stain
                method: reinhard
                target: \(Self.repository.appendingPathComponent("Tests/TilingTests/Fixtures/stain/target.png").path)
              - stage: cache
                path: \(cache)
            """
        let first = try run(text)
        let tiles = try XCTUnwrap(first.counters["cache.misses"])
        XCTAssertGreaterThan(tiles, 10)
        XCTAssertEqual(try run(text).counters["cache.hits"], tiles)
        // The same bytes, written again later: size equal, time not.
        let stripe = slides.appendingPathComponent("hgsc_nest_x1.jpg")
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(60)], ofItemAtPath: stripe.path)
        let rewritten = try run(text)
        XCTAssertEqual(rewritten.counters["cache.misses"], tiles)
        XCTAssertNil(rewritten.counters["cache.hits"])
    }

    func testCachedTilesAreReadBackForLaterStages() throws {
        _ = try writeSlide("a.tif")
        let cache = folder.appendingPathComponent("cache").path
        let export = "  - stage: export\n    folder: \(folder.appendingPathComponent("tiles").path)\n"
        let first = try run(flowText(slides: folder.path, cache: cache, extra: export))
        let csv1 = try String(contentsOf: folder.appendingPathComponent("tiles/tiles.csv"), encoding: .utf8)
        let name = try XCTUnwrap(CSVTable(path: folder.appendingPathComponent("tiles/tiles.csv").path).rows.first?.values["file"])
        let png1 = try Data(contentsOf: folder.appendingPathComponent("tiles/\(name)"))
        try FileManager.default.removeItem(at: folder.appendingPathComponent("tiles"))
        let second = try run(flowText(slides: folder.path, cache: cache, extra: export))
        XCTAssertEqual(second.counters["cache.hits"], first.counters["cache.misses"])
        XCTAssertEqual(second.counters["export.tiles"], first.counters["export.tiles"])
        XCTAssertEqual(try String(contentsOf: folder.appendingPathComponent("tiles/tiles.csv"), encoding: .utf8), csv1)
        XCTAssertEqual(try Data(contentsOf: folder.appendingPathComponent("tiles/\(name)")), png1, "a tile read from the cache is the tile that was written")
    }

    func testShardsMergeIntoTheWholeCache() throws {
        for name in ["a.tif", "b.tif", "c.tif"] { _ = try writeSlide(name) }
        let whole = folder.appendingPathComponent("whole").path
        let full = try run(flowText(slides: folder.path, cache: whole))
        var total = 0
        for shard in 0..<2 {
            let report = try run(flowText(slides: folder.path, cache: folder.appendingPathComponent("shard\(shard)").path),
                                 overrides: ["source.shard=\(shard)/2"])
            XCTAssertEqual(report.stages.first { $0.name == "source" }?.itemsOut, shard == 0 ? 2 : 1)
            total += report.counters["cache.written"] ?? 0
        }
        XCTAssertEqual(total, full.counters["cache.written"])
        let merged = try TileStore(path: folder.appendingPathComponent("merged").path)
        for shard in 0..<2 { _ = try merged.merge(from: TileStore(path: folder.appendingPathComponent("shard\(shard)").path, readOnly: true)) }
        XCTAssertEqual(try merged.statistics().records, try TileStore(path: whole, readOnly: true).statistics().records)
        XCTAssertThrowsError(try run(flowText(slides: folder.path, cache: whole), overrides: ["source.shard=2/2"])) { error in
            XCTAssertTrue("\(error)".contains("0 ≤ i < n"), "\(error)")
        }
    }

    func testUnreadableSlideIsReportedAndSkipped() throws {
        _ = try writeSlide("a.tif")
        try Data("not a tiff".utf8).write(to: folder.appendingPathComponent("broken.tif"))
        let report = try run(flowText(slides: folder.path, cache: folder.appendingPathComponent("cache").path))
        XCTAssertEqual(report.status, .completed)
        let source = try XCTUnwrap(report.stages.first { $0.name == "source" })
        XCTAssertEqual(source.failed, 1)
        XCTAssertTrue(source.failures[0].item.hasSuffix("broken.tif"))
        XCTAssertGreaterThan(report.counters["cache.written"] ?? 0, 0, "the good slide still went through")
        let failing = try run(flowText(slides: folder.path, cache: folder.appendingPathComponent("cache2").path)
            .replacingOccurrences(of: "flow: test", with: "flow: test\non_error: fail"))
        XCTAssertEqual(failing.status, .failed)
        XCTAssertTrue(failing.stopReason?.contains("broken.tif") ?? false)
    }

    func testBadStainTargetFailsBeforeRunningWithItsLine() throws {
        _ = try writeSlide("a.tif")
        let blank = folder.appendingPathComponent("blank.png")
        try PNGWriter.write(RGBImage(width: 32, height: 32, filling: (250, 250, 250)), to: blank)
        let text = flowText(slides: folder.path, cache: folder.appendingPathComponent("cache").path)
            .replacingOccurrences(of: Self.repository.appendingPathComponent("Tests/TilingTests/Fixtures/stain/target.png").path, with: blank.path)
        XCTAssertThrowsError(try run(text)) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains(":15:5:"), message)  // the stain entry's line
            XCTAssertTrue(message.contains("target"), message)
            // The step's place wraps the stain error as thrown, its type kept.
            let failure = error as? StepFailure
            XCTAssertEqual(failure?.kind, "stain")
            XCTAssertEqual(failure?.location.line, 15)
            XCTAssertTrue(failure?.underlying is StainError, "\(type(of: failure?.underlying))")
        }
    }

    func testROIFolderAndCSVSources() throws {
        let dataset = folder.appendingPathComponent("rois")
        for (label, colour) in [("tumour", (120 as UInt8, 60 as UInt8, 160 as UInt8)), ("stroma", (230, 140, 190))] {
            let classFolder = dataset.appendingPathComponent(label)
            try FileManager.default.createDirectory(at: classFolder, withIntermediateDirectories: true)
            for i in 0..<3 { try PNGWriter.write(RGBImage(width: 40, height: 36, filling: colour), to: classFolder.appendingPathComponent("\(i).png")) }
        }
        let export = folder.appendingPathComponent("exported")
        let report = try run("""
            flow: rois
            output: \(folder.appendingPathComponent("run").path)
            source:
              kind: roi_folder
              path: \(dataset.path)
            stages:
              - stage: decode
                size: 32
              - stage: export
                folder: \(export.path)
            """)
        XCTAssertEqual(report.counters["export.tiles"], 6)
        let csv = try String(contentsOf: export.appendingPathComponent("tiles.csv"), encoding: .utf8)
        XCTAssertEqual(csv.components(separatedBy: ",stroma").count - 1, 3)
        XCTAssertEqual(try ImageFile.read(export.appendingPathComponent("0_c0000_r0000_0mpp.png").path).width, 32)

        let table = folder.appendingPathComponent("images.csv")
        try "path,label,split\nrois/tumour/0.png,tumour,train\nrois/stroma/1.png,stroma\n".write(to: table, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try run("""
            flow: csv
            output: \(folder.appendingPathComponent("run-csv").path)
            source:
              kind: image_csv
              path: \(table.path)
            stages:
              - stage: decode
            """)) { error in
            XCTAssertTrue("\(error)".contains("images.csv:3: 2 fields, but the header has 3"), "\(error)")
        }
    }

    func testExampleFlowsValidateAndDocsAreCurrent() throws {
        let flows = Self.repository.appendingPathComponent("flows")
        let files = try FileManager.default.contentsOfDirectory(atPath: flows.path).filter { $0.hasSuffix(".yaml") }
        XCTAssertFalse(files.isEmpty)
        guard FileManager.default.fileExists(atPath: Self.repository.appendingPathComponent("data/samples/target_image.png").path) else {
            throw XCTSkip("run `make samples` (make test does it)")
        }
        let current = FileManager.default.currentDirectoryPath
        FileManager.default.changeCurrentDirectoryPath(Self.repository.path)
        defer { FileManager.default.changeCurrentDirectoryPath(current) }
        for file in files { XCTAssertNoThrow(try FlowRunner.load("flows/\(file)"), file) }
        let docs = try String(contentsOf: Self.repository.appendingPathComponent("docs/FLOWS.md"), encoding: .utf8)
        XCTAssertEqual(docs, Catalog.markdown, "docs/FLOWS.md is stale: regenerate it with `ssmamba flow docs > docs/FLOWS.md`")
    }
}

/// The cache's model-ready path and the training stages' streaming input, through real flows.
final class CacheContractTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("cache-contract-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    func run(_ text: String) throws -> FlowReport {
        let path = folder.appendingPathComponent("flow-\(UUID()).yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return try FlowRunner.run(FlowRunner.load(path), printer: nil).report
    }

    /// A slide with colour that differs per channel and position, so a channel mix-up shows.
    func writeSlide() throws -> URL {
        let (w, h) = (512, 384)
        var pixels = [UInt8](repeating: 0, count: w * h * 3)
        for y in 0..<h { for x in 0..<w {
            let o = (y * w + x) * 3
            pixels[o] = UInt8((x * 7 + y) & 0xFF); pixels[o + 1] = UInt8((y * 5) & 0xFF); pixels[o + 2] = UInt8((x ^ y) & 0xFF)
        } }
        let url = folder.appendingPathComponent("s.tif")
        try PyramidWriter.write(RGBImage(width: w, height: h, pixels: pixels), to: url, micronsPerPixel: 0.5, compression: .deflate)
        return url
    }

    func testFlowWrittenCacheReadsBackThroughTheModelReadyPathAsTheSourcePixels() throws {
        let slide = try writeSlide()
        let cache = folder.appendingPathComponent("cache")
        let export = folder.appendingPathComponent("exported")
        let report = try run("""
            flow: contract
            output: \(folder.appendingPathComponent("run").path)
            source: {kind: slides, path: \(slide.path)}
            stages:
              - stage: tiles
                mpp: 0.5
                size: 32
                scales: [0.5, 1.0]
              - stage: cache
                path: \(cache.path)
              - stage: export
                folder: \(export.path)
            """)
        XCTAssertEqual(report.status, .completed, report.markdown)
        let rows = try CSVTable(path: export.appendingPathComponent("tiles.csv").path).rows.map(\.values)
        XCTAssertEqual(rows.count, 2 * (512 / 32) * (384 / 32))
        // Each exported tile (the pixels the flow computed) against its record read back as a batch.
        let store = try TileStore(path: cache.path, readOnly: true)
        var keys: [TileKey] = []
        try store.environment.read { txn in try txn.forEach { key, _ in keys.append(try XCTUnwrap(TileKey(bytes: key))) } }
        XCTAssertEqual(keys.count, rows.count)
        let byPlace = Dictionary(uniqueKeysWithValues: keys.map { ("\($0.x),\($0.y),\($0.micronsPerPixel)", $0) })
        let mean: [Float] = [0.485, 0.456, 0.406], std: [Float] = [0.229, 0.224, 0.225]
        var compared = 0
        for row in rows {
            let file = row["file"]!
            let source = try ImageFile.read(export.appendingPathComponent(file).path)
            let key = try XCTUnwrap(byPlace["\(row["level0_x"]!),\(row["level0_y"]!),\(Double(row["scale_mpp"]!)!)"], "no record for \(file)")
            XCTAssertEqual(try store.read(key)?.pixels, source.pixels, file)
            let (images, missing, corrupt) = try store.batch([key], mean: mean, std: std)
            XCTAssertTrue(missing.isEmpty && corrupt.isEmpty)
            XCTAssertEqual(images.shape, [1, 3, 32, 32])
            for y in 0..<32 { for x in 0..<32 { for c in 0..<3 {
                let value = images[0, c, y, x]
                XCTAssertEqual(value, (Float(source[x: x, y: y, channel: c]) / 255 - mean[c]) / std[c], accuracy: 1e-5)
                XCTAssertEqual(UInt8(((value * std[c] + mean[c]) * 255).rounded()), source[x: x, y: y, channel: c], "exact pixel of \(file)")
            } } }
            compared += 1
        }
        XCTAssertEqual(compared, rows.count)
    }

    /// Labelled ROI images through decode and a cache into fine-tuning.
    func writeROIs() throws -> URL { try writeColourROIs(into: folder.appendingPathComponent("rois"), perClass: 12) }

    /// `export` with `format: jpeg` writes JPEG files (named in the tile table) close to the
    /// lossless PNGs of the same tiles.
    func testExportWritesJPEGWhenAsked() throws {
        let rois = try writeROIs()
        let png = folder.appendingPathComponent("png"), jpeg = folder.appendingPathComponent("jpeg")
        let report = try run("""
            flow: export-both
            output: \(folder.appendingPathComponent("run").path)
            source: {kind: roi_folder, path: \(rois.path)}
            stages:
              - stage: decode
              - stage: export
                name: lossless
                folder: \(png.path)
              - stage: export
                name: small
                from: decode
                folder: \(jpeg.path)
                format: jpeg
                quality: 90
            """)
        XCTAssertEqual(report.status, .completed, report.markdown)
        let rows = try CSVTable(path: jpeg.appendingPathComponent("tiles.csv").path).rows.map(\.values)
        XCTAssertEqual(rows.count, 24)
        for row in rows {
            let name = try XCTUnwrap(row["file"])
            XCTAssertTrue(name.hasSuffix(".jpg"), name)
            let lossy = try ImageFile.read(jpeg.appendingPathComponent(name).path)
            let lossless = try ImageFile.read(png.appendingPathComponent(String(name.dropLast(4)) + ".png").path)
            XCTAssertEqual([lossy.width, lossy.height], [lossless.width, lossless.height])
            var total = 0.0
            for (a, b) in zip(lossy.pixels, lossless.pixels) { total += Double(Int(a) - Int(b)) * Double(Int(a) - Int(b)) }
            let psnr = 10 * log10(255 * 255 / max(total / Double(lossy.pixels.count), 1e-9))
            XCTAssertGreaterThan(psnr, 30, name)
            XCTAssertEqual(Array(try Data(contentsOf: jpeg.appendingPathComponent(name)).prefix(3)), [0xFF, 0xD8, 0xFF], "a JPEG stream: \(name)")
        }
    }

    func finetuneFlow(_ rois: URL, cache: URL, onError: String) -> String {
        """
        flow: finetune
        output: \(folder.appendingPathComponent("run-\(onError)").path)
        on_error: \(onError)
        source: {kind: roi_folder, path: \(rois.path)}
        stages:
          - stage: decode
          - stage: cache
            path: \(cache.path)
          - stage: finetune
            epochs: 2
            batch: 4
            validation_fraction: 0.25
            test_fraction: 0.25
        """
    }

    func testADamagedRecordMidTrainingFollowsTheErrorPolicy() throws {
        let rois = try writeROIs()
        let cache = folder.appendingPathComponent("cache")
        let first = try run(finetuneFlow(rois, cache: cache, onError: "skip"))
        XCTAssertEqual(first.status, .completed, first.markdown)
        XCTAssertEqual(first.failures, 0, first.markdown)
        XCTAssertEqual(first.counters["finetune.steps"], 2 * ((first.counters["finetune.train_tiles"]! + 3) / 4))
        // Damage one record of the cache; the rerun finds it in place (skip-if-present) and reads it.
        let store = try TileStore(path: cache.path)
        var damagedKey: [UInt8] = []
        var record: [UInt8] = []
        try store.environment.read { txn in
            try txn.forEach { key, value in if damagedKey.isEmpty { damagedKey = Array(key); record = Array(value) } }
        }
        record[record.count - 1] ^= 0xFF
        try store.environment.put([(key: damagedKey, value: record)], overwrite: true)
        let skipped = try run(finetuneFlow(rois, cache: cache, onError: "skip"))
        XCTAssertEqual(skipped.status, .completed, skipped.markdown)
        XCTAssertGreaterThanOrEqual(skipped.failures, 1, skipped.markdown)
        XCTAssertTrue(skipped.markdown.contains("corrupt"), skipped.markdown)
        XCTAssertTrue(skipped.markdown.contains(cache.path), "names the cache: \(skipped.markdown)")
        let failed = try run(finetuneFlow(rois, cache: cache, onError: "fail"))
        XCTAssertEqual(failed.status, .failed, failed.markdown)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder.appendingPathComponent("run-fail/finetune/metrics.json").path),
                       "no test metrics from a run that failed")
        // What it did write is whole: a resumable checkpoint after a complete step, if any.
        let last = folder.appendingPathComponent("run-fail/finetune/last")
        if FileManager.default.fileExists(atPath: last.path) {
            let checkpoint = try Checkpoint.read(from: last)
            XCTAssertNotNil(checkpoint.optimizer)
            XCTAssertLessThanOrEqual(Int(checkpoint.manifest.notes["position"] ?? "") ?? .max, first.counters["finetune.steps"]!)
        }
    }

    func testTrainingOnAnUncachedStepIsRefusedWithItsLine() throws {
        let rois = try writeROIs()
        let path = folder.appendingPathComponent("uncached.yaml").path
        try """
        flow: uncached
        source: {kind: roi_folder, path: \(rois.path)}
        stages:
          - stage: decode
          - stage: finetune
            epochs: 1
        """.write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try FlowRunner.load(path)) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("uncached.yaml:5:"), message)
            XCTAssertTrue(message.contains("reads only `cache` or `cached_tiles` steps"), message)
            XCTAssertTrue(message.contains("from: decode"), message)
        }
    }

    func testBadTrainingInputsGetClearErrors() throws {
        let rois = try writeROIs()
        // Tiles of another size than the model's input: one error naming the sizes and the fix.
        let small = try run("""
            flow: small
            output: \(folder.appendingPathComponent("run-small").path)
            source: {kind: roi_folder, path: \(rois.path)}
            stages:
              - stage: decode
                size: 32
              - stage: cache
                path: \(folder.appendingPathComponent("cache-small").path)
              - stage: finetune
                epochs: 1
            """)
        XCTAssertEqual(small.failures, 1, small.markdown)
        XCTAssertTrue(small.markdown.contains("32×32 px and the model takes 64×64") && small.markdown.contains("`size: 64`"), small.markdown)
        XCTAssertNil(small.counters["finetune.steps"])

        // A cache path that is not a cache: refused before anything runs, naming the path.
        let empty = folder.appendingPathComponent("not-a-cache")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        XCTAssertThrowsError(try run("""
            flow: nocache
            output: \(folder.appendingPathComponent("run-nocache").path)
            source: {kind: cached_tiles, path: \(empty.path)}
            stages:
              - stage: pretrain
                steps: 1
            """)) { error in
            XCTAssertTrue("\(error)".contains("\(empty.path): not a tile cache"), "\(error)")
            XCTAssertTrue("\(error)".contains(":3:"), "names the source's line: \(error)")
        }

        // A split name that is none of the three: an error naming the row (it dropped the image).
        let oddTable = folder.appendingPathComponent("odd.csv")
        try "path,label,split\nrois/pink/pink-0.png,pink,Val\nrois/pink/pink-1.png,pink,holdout\n".write(to: oddTable, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try run("""
            flow: odd
            output: \(folder.appendingPathComponent("run-odd").path)
            source: {kind: image_csv, path: \(oddTable.path)}
            stages:
              - stage: decode
            """)) { error in
            XCTAssertTrue("\(error)".contains("odd.csv:3: split 'holdout' is not train, validation or test"), "\(error)")
        }
        // An empty split: the counts and what to do.
        let table = folder.appendingPathComponent("images.csv")
        var rows = "path,label,split\n"
        for (i, label) in ["pink", "purple"].enumerated() {
            for k in 0..<6 { rows += "rois/\(label)/\(label)-\(k).png,\(label),\(k < 4 ? "train" : "validation")\n" }
            _ = i
        }
        try rows.write(to: table, atomically: true, encoding: .utf8)
        let split = try run("""
            flow: split
            output: \(folder.appendingPathComponent("run-split").path)
            source: {kind: image_csv, path: \(table.path)}
            stages:
              - stage: decode
              - stage: cache
                path: \(folder.appendingPathComponent("cache-split").path)
              - stage: finetune
                epochs: 1
            """)
        XCTAssertEqual(split.failures, 1, split.markdown)
        XCTAssertTrue(split.markdown.contains("empty split (train 8, validation 4, test 0)"), split.markdown)
    }
}
