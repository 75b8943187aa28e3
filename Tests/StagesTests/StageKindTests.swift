import Flow
import Foundation
import Slides
import Stages
import TileCache
import Tiling
import XCTest

/// Each stage kind on its own, built from a flow file as a run builds it and driven through a
/// `StageHarness` with real files: what it emits, counts and reports.
final class StageKindTests: XCTestCase {
    var folder: URL!
    static let samples = FlowRunTests.repository.appendingPathComponent("data/samples")
    static let stainTarget = FlowRunTests.repository.appendingPathComponent("Tests/TilingTests/Fixtures/stain/target.png")

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("kinds-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    /// A flow of `source` (YAML lines under `source:`) and `stages` (YAML list items).
    func flow(source: String, stages: String) -> String {
        "flow: kinds\noutput: \(folder.appendingPathComponent("run").path)\nsource:\n" + source + "\nstages:\n" + stages
    }

    /// The step `step` of the flow `text`, built as a run builds it, by the items it reads and emits.
    func harness<Input, Output>(_ step: String, _ text: String) throws -> StageHarness<Input, Output> {
        try KindHarness.make(step: step, in: text, runFolder: folder.appendingPathComponent("run"))
    }
    func slideSource(_ step: String, _ text: String) throws -> StageHarness<Never, SlideItem> { try harness(step, text) }
    func imageSource(_ step: String, _ text: String) throws -> StageHarness<Never, ImageItem> { try harness(step, text) }
    func tileSource(_ step: String, _ text: String) throws -> StageHarness<Never, Tile> { try harness(step, text) }
    func slideStage(_ step: String, _ text: String) throws -> StageHarness<SlideItem, SlideItem> { try harness(step, text) }
    func tilingStage(_ step: String, _ text: String) throws -> StageHarness<SlideItem, Tile> { try harness(step, text) }
    func decodingStage(_ step: String, _ text: String) throws -> StageHarness<ImageItem, Tile> { try harness(step, text) }
    func tileStage(_ step: String, _ text: String) throws -> StageHarness<Tile, Tile> { try harness(step, text) }
    func finalStage(_ step: String, _ text: String) throws -> StageHarness<Tile, Never> { try harness(step, text) }

    /// `count` slides of 512×384 px at 0.5 µm/px: tissue (pink, or purple when `purple(i)`) left of x = 320, glass right of it.
    func writeSlides(_ count: Int, purple: (Int) -> Bool = { _ in false }) throws -> URL {
        let slides = folder.appendingPathComponent("slides")
        try FileManager.default.createDirectory(at: slides, withIntermediateDirectories: true)
        for i in 0..<count {
            let (w, h) = (512, 384)
            var pixels = [UInt8](repeating: 242, count: w * h * 3)
            let colour = purple(i) ? (110, 60, 160) : (230, 140, 190)
            for y in 0..<h { for x in 0..<320 {
                let o = (y * w + x) * 3
                let jitter = (x &* 7 &+ y &* 13) % 9
                pixels[o] = UInt8(colour.0 + jitter); pixels[o + 1] = UInt8(colour.1 + jitter); pixels[o + 2] = UInt8(colour.2 + jitter)
            } }
            try PyramidWriter.write(RGBImage(width: w, height: h, pixels: pixels), to: slides.appendingPathComponent("s\(i).tif"),
                                    micronsPerPixel: 0.5, compression: .deflate)
        }
        return slides
    }

    /// Tissue, then one 64-px crop per position at 1 µm/px where tissue covers 90 %.
    static let tissueAndTiles = """
          - stage: tissue
          - stage: tiles
            mpp: 1.0
            size: 64
            min_tissue: 0.9

        """

    func slidesSource(_ slides: URL, extra: String = "") -> String {
        "  kind: slides\n  path: \(slides.path)\n  pattern: \"*.tif\"\n" + extra
    }

    // MARK: the kinds' declarations

    /// Every kind's `Parameters` type decodes every documented parameter (a misspelt or mistyped
    /// property would be an error here, not a trap in a run), and the kinds' names are distinct.
    func testEveryKindDecodesEveryDocumentedParameter() throws {
        XCTAssertEqual(StageKinds.declarationProblems(), [])
        let names = (StageKinds.sources + StageKinds.stages).map { $0.name }
        XCTAssertEqual(names.count, 16)
        XCTAssertEqual(StageKinds.catalog.stages.first { $0.name == "finetune" }?.readsOnly, ["cache", "cached_tiles"])
        XCTAssertEqual(StageKinds.catalog.stages.first { $0.name == "tiles" }?.input, "slide")
        XCTAssertEqual(StageKinds.catalog.stages.first { $0.name == "tiles" }?.output, "tile")
    }

    // MARK: sources

    func testSlidesSourceListsSortedSlidesWithTheirLabelsAndShards() throws {
        let slides = try writeSlides(3)
        let labels = folder.appendingPathComponent("labels.csv")
        try "slide,patient,label\ns2.tif,p2,tumour\ns0.tif,p0,normal\n".write(to: labels, atomically: true, encoding: .utf8)
        let listed = try slideSource("source", flow(source: slidesSource(slides, extra: "  labels: \(labels.path)"), stages: "  - stage: tissue")).produce()
        XCTAssertEqual(listed.map(\.description), ["s0.tif", "s1.tif", "s2.tif"])
        XCTAssertEqual(listed.map(\.label), ["normal", nil, "tumour"])
        XCTAssertEqual(listed[2].patient, "p2")
        XCTAssertEqual(listed[0].reader.micronsPerPixel, 0.5)
        let shard = try slideSource("source", flow(source: slidesSource(slides, extra: "  shard: 1/2"), stages: "  - stage: tissue")).produce()
        XCTAssertEqual(shard.map(\.description), ["s1.tif"])
        // A folder without slides fails when the step is built, saying where it looked.
        let empty = folder.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        XCTAssertThrowsError(try slideSource("source", flow(source: slidesSource(empty), stages: "  - stage: tissue"))) { error in
            XCTAssertTrue("\(error)".contains("no slides found at '\(empty.path)'"), "\(error)")
        }
    }

    func testROIFolderAndImageCSVSourcesListLabelledImages() throws {
        let rois = try writeColourROIs(into: folder.appendingPathComponent("rois"), perClass: 3)
        let images = try imageSource("source", flow(source: "  kind: roi_folder\n  path: \(rois.path)", stages: "  - stage: decode")).produce()
        XCTAssertEqual(images.map(\.label), ["pink", "pink", "pink", "purple", "purple", "purple"])
        XCTAssertTrue(images.allSatisfy { FileManager.default.fileExists(atPath: $0.path) })

        let csv = folder.appendingPathComponent("images.csv")
        try "path,label,split\nrois/pink/pink-0.png,pink,train\nrois/purple/purple-1.png,purple,Val\n".write(to: csv, atomically: true, encoding: .utf8)
        let listed = try imageSource("source", flow(source: "  kind: image_csv\n  path: \(csv.path)", stages: "  - stage: decode")).produce()
        XCTAssertEqual(listed.map(\.path), [rois.appendingPathComponent("pink/pink-0.png").path, rois.appendingPathComponent("purple/purple-1.png").path])
        XCTAssertEqual(listed.map(\.split), ["train", "validation"])
    }

    func testNucleiSourceCutsOneLabelledPatchPerNucleusOfTheRealSample() throws {
        let source = """
              kind: nuclei
              image: \(Self.samples.appendingPathComponent("hgsc_nest.jpg").path)
              instances: \(Self.samples.appendingPathComponent("hgsc_nest_inst_mask.npz").path)
              types: \(Self.samples.appendingPathComponent("hgsc_nest_type_mask.npz").path)
              patch: 32
            """
        let nuclei = try tileSource("source", flow(source: source, stages: "  - stage: cache\n    path: \(folder.path)/c"))
        let patches = try nuclei.produce()
        XCTAssertGreaterThan(patches.count, 100)
        XCTAssertTrue(patches.allSatisfy { $0.image.width == 32 && $0.image.height == 32 && ["type1", "type2", "type3"].contains($0.label ?? "") })
        XCTAssertEqual(Set(patches.compactMap(\.split)), ["train", "validation", "test"])
        XCTAssertNotNil(nuclei.counters["source.dropped_on_region_borders"])
    }

    // MARK: slide stages

    func testTissueThenTilesOnASlideWithKnownTissue() throws {
        let slides = try writeSlides(1)
        let text = flow(source: slidesSource(slides), stages: """
              - stage: tissue
                mask_mpp: 4
                save_masks: true
              - stage: tiles
                mpp: 1.0
                size: 64
                scales: [1.0, 2.0]
                min_tissue: 0.9
            """)
        let slide = try slideSource("source", text).produce()
        let tissue = try slideStage("tissue", text)
        let masked = try tissue.run(slide)
        XCTAssertEqual(tissue.counters["tissue.slides"], 1)
        XCTAssertNotNil(masked.first?.mask)
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder.appendingPathComponent("run/masks/s0.png").path))
        // The outlines for QuPath: the tissue (x < 320 of the 512-px slide) and not the glass.
        let (outline, _) = try Annotation.read(geoJSON: folder.appendingPathComponent("run/masks/s0.tissue.geojson"))
        XCTAssertEqual(outline.map(\.classification), ["Tissue"])
        XCTAssertTrue(outline[0].contains(x: 100, y: 200))
        XCTAssertFalse(outline[0].contains(x: 450, y: 200))

        let tiles = try tilingStage("tiles", text)
        let crops = try tiles.run(masked)
        // Tissue spans x < 320 of 512 level-0 px: at 1 µm/px, 64-px tiles are 128 level-0 px, so two columns of three rows.
        XCTAssertEqual(tiles.counters["tiles.positions"], 2 * 3)
        XCTAssertEqual(crops.count, 2 * 3 * 2, "two scales per position")
        XCTAssertTrue(crops.allSatisfy { $0.image.width == 64 && $0.image.height == 64 })
        XCTAssertEqual(Set(crops.map(\.requestedMicronsPerPixel)), [1.0, 2.0])
        XCTAssertTrue(tiles.failures.isEmpty)
    }

    /// A QuPath-style GeoJSON written by hand with known geometry restricts tiling to its polygons
    /// (holes excluded) and labels the tiles by the annotation's class.
    func testAnnotationsRestrictTilingToTheirPolygonsAndLabelTheTiles() throws {
        let slides = try writeSlides(2)
        let annotations = folder.appendingPathComponent("annotations")
        try FileManager.default.createDirectory(at: annotations, withIntermediateDirectories: true)
        // Level-0 pixels of the 512×384 slide; tiles of 64 px at 1 µm/px are 128 px squares centred at (64 + 128i, 64 + 128j).
        try """
            {"type": "FeatureCollection", "features": [
              {"type": "Feature", "id": "a1", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [256, 0], [256, 256], [0, 256], [0, 0]]]},
               "properties": {"objectType": "annotation", "classification": {"name": "Tumor", "color": [200, 0, 0]}}},
              {"type": "Feature", "id": "a2", "geometry": {"type": "Polygon", "coordinates": [
                 [[256, 0], [512, 0], [512, 256], [256, 256], [256, 0]],
                 [[300, 20], [340, 20], [340, 100], [300, 100], [300, 20]]]},
               "properties": {"objectType": "annotation", "classification": {"name": "Stroma", "color": [0, 200, 0]}}},
              {"type": "Feature", "geometry": {"type": "Point", "coordinates": [10, 10]}, "properties": {"objectType": "annotation"}}
            ]}
            """.write(to: annotations.appendingPathComponent("s0.geojson"), atomically: true, encoding: .utf8)
        let text = flow(source: slidesSource(slides, extra: "  annotations: \(annotations.path)"), stages: """
              - stage: tiles
                mpp: 1.0
                size: 64
            """)
        let source = try slideSource("source", text)
        let listed = try source.produce()
        XCTAssertEqual(listed.map(\.description), ["s0.tif"], "the slide without annotations is reported, not tiled whole")
        XCTAssertTrue(source.failures.first?.reason.contains("no annotations at \(annotations.path)/s1.geojson") ?? false, "\(source.failures)")
        XCTAssertEqual(source.counters["source.annotations_without_area"], 1, "the point")
        let tiles = try tilingStage("tiles", text)
        let cut = try tiles.run(listed)
        // The square holds 4 centres (its area, 65,536 px², is 4 tiles); the other square 4 less the one in its hole.
        XCTAssertEqual(tiles.counters["tiles.positions"], 7)
        XCTAssertEqual(tiles.counters["tiles.outside_annotations"], 12 - 7)
        let byLabel = Dictionary(grouping: cut, by: { $0.label ?? "" }).mapValues { $0.map { ($0.level0X + 64, $0.level0Y + 64) } }
        XCTAssertEqual(byLabel["Tumor"]?.sorted { $0 < $1 }.map { [$0.0, $0.1] }, [[64, 64], [64, 192], [192, 64], [192, 192]])
        XCTAssertEqual(byLabel["Stroma"]?.sorted { $0 < $1 }.map { [$0.0, $0.1] }, [[320, 192], [448, 64], [448, 192]])
    }

    // MARK: tile stages

    func testDecodeCropsImagesAndNamesTheFileThatIsTooSmall() throws {
        let rois = try writeColourROIs(into: folder.appendingPathComponent("rois"), perClass: 1)
        let text = { (size: Int) in self.flow(source: "  kind: roi_folder\n  path: \(rois.path)", stages: "  - stage: decode\n    size: \(size)\n    mpp: 0.5") }
        let images = try imageSource("source", text(48)).produce()
        let tiles = try decodingStage("decode", text(48)).run(images)
        XCTAssertEqual(tiles.map(\.image.width), [48, 48])
        XCTAssertEqual(tiles.map(\.label), ["pink", "purple"])
        XCTAssertEqual(tiles[0].effectiveMicronsPerPixel, 0.5)
        XCTAssertThrowsError(try decodingStage("decode", text(80)).process(images[0])) { error in
            XCTAssertTrue("\(error)".contains("\(images[0].path): the image is 64×64, smaller than `size: 80`"), "\(error)")
        }
    }

    func testStainNormalizesTissueAndPassesBackgroundThrough() throws {
        let rois = try writeColourROIs(into: folder.appendingPathComponent("rois"), perClass: 1)
        let text = flow(source: "  kind: roi_folder\n  path: \(rois.path)", stages: """
              - stage: decode
              - stage: stain
                method: reinhard
                target: \(Self.stainTarget.path)
            """)
        let tiles = try decodingStage("decode", text).run(try imageSource("source", text).produce())
        let glass = Tile(source: "glass", column: 0, row: 0, scaleIndex: 0, level0X: 0, level0Y: 0, requestedMicronsPerPixel: 1,
                         effectiveMicronsPerPixel: 1, tissueFraction: 0, image: RGBImage(width: 8, height: 8, pixels: [UInt8](repeating: 250, count: 8 * 8 * 3)))
        let stain = try tileStage("stain", text)
        let out = try stain.run(tiles + [glass])
        XCTAssertEqual(stain.counters["stain.normalized"], 2)
        XCTAssertEqual(stain.counters["stain.passed_through"], 1)
        XCTAssertNotEqual(out[0].image.pixels, tiles[0].image.pixels)
        XCTAssertEqual(out[2].image.pixels, glass.image.pixels)
    }

    /// Sharp tiles pass, the same tiles blurred are dropped and counted; a tile without pixels is an error naming it.
    func testFocusDropsBlurredTiles() throws {
        let slides = try writeSlides(1)
        let text = flow(source: slidesSource(slides), stages: Self.tissueAndTiles + """
              - stage: focus
                name: sharp_only
                min_sharpness: 200
            """)
        let sharp = try tilingStage("tiles", text).run(try slideStage("tissue", text).run(try slideSource("source", text).produce()))
        // Stripes every 24 px: a 5×5 box blur of a tile removes the edges its sharpness comes from.
        func boxBlurred(_ image: RGBImage) -> RGBImage {
            var out = image
            for y in 0..<image.height { for x in 0..<image.width { for c in 0..<3 {
                var sum = 0, count = 0
                for dy in -2...2 { for dx in -2...2 {
                    let (u, v) = (x + dx, y + dy)
                    guard u >= 0, v >= 0, u < image.width, v < image.height else { continue }
                    sum += Int(image.pixels[(v * image.width + u) * 3 + c]); count += 1
                } }
                out.pixels[(y * image.width + x) * 3 + c] = UInt8(sum / count)
            } } }
            return out
        }
        let slideTiles = sharp.filter { $0.scaleIndex == 0 }
        XCTAssertEqual(slideTiles.count, 6)
        var striped = slideTiles
        for i in striped.indices {
            var pixels = striped[i].image.pixels
            for y in 0..<64 { for x in 0..<64 where (x / 6) % 2 == 0 { for c in 0..<3 { pixels[(y * 64 + x) * 3 + c] /= 2 } } }
            striped[i].image.pixels = pixels
        }
        let blurred = striped.map { var tile = $0; tile.image = boxBlurred(boxBlurred(tile.image)); return tile }
        let focus = try tileStage("sharp_only", text)
        let kept = try focus.run(striped + blurred)
        XCTAssertTrue(kept.map(\.image.pixels) == striped.map(\.image.pixels), "the sharp tiles are kept, unchanged and in order")
        // Measured: ~2,540 for the striped tiles, ~35 blurred.
        XCTAssertGreaterThan(FocusStage.sharpness(striped[0].image), 1000)
        XCTAssertLessThan(FocusStage.sharpness(blurred[0].image), 100)
        XCTAssertEqual(focus.counters["sharp_only.kept"], 6)
        XCTAssertEqual(focus.counters["sharp_only.blurred"], 6)
        XCTAssertThrowsError(try focus.process(Tile(source: "cached.svs", column: 0, row: 0, scaleIndex: 0, level0X: 0, level0Y: 0, requestedMicronsPerPixel: 1,
                                                    effectiveMicronsPerPixel: 1, tissueFraction: 1, image: RGBImage(width: 0, height: 0, pixels: [])))) { error in
            XCTAssertTrue("\(error)".contains("no pixels to judge"), "\(error)")
        }
    }

    /// A tiles step that feeds a cache (through stain only) announces positions the cache holds
    /// without reading the slide; the cache then reads their pixels for a reader that needs them.
    func testCacheWritesMissesThenHitsAndCachedTilesListsThem() throws {
        let slides = try writeSlides(1)
        let cache = folder.appendingPathComponent("cache")
        let text = flow(source: slidesSource(slides), stages: Self.tissueAndTiles + """
              - stage: stain
                target: \(Self.stainTarget.path)
              - stage: cache
                path: \(cache.path)
                batch: 4
              - stage: export
            """)
        let slide = try slideStage("tissue", text).run(try slideSource("source", text).produce())
        var computed: [Tile] = []
        do {  // one step at a time holds the cache: LMDB opens an environment once per process
            let tiles = try tilingStage("tiles", text).run(slide)
            XCTAssertTrue(tiles.allSatisfy { !$0.awaitingCache && $0.image.width == 64 })
            let stained = try tileStage("stain", text).run(tiles)
            let first = try tileStage("cache", text)
            computed = try first.run(stained).map { var tile = $0; tile.cacheEntry = nil; return tile }
            XCTAssertEqual(first.counters["cache.misses"], 6)
            XCTAssertEqual(first.counters["cache.written"], 6)
        }
        do {
            let tiles = try tilingStage("tiles", text).run(slide)
            XCTAssertEqual(tiles.count, 6)
            XCTAssertTrue(tiles.allSatisfy { $0.awaitingCache && $0.image.width == 0 }, "announced from the cache, the slide not read")
            let second = try tileStage("cache", text)
            let read = try second.run(try tileStage("stain", text).run(tiles))
            XCTAssertEqual(second.counters["cache.hits"], 6)
            XCTAssertNil(second.counters["cache.misses"])
            XCTAssertEqual(read.map(\.image.pixels), computed.map(\.image.pixels), "the export after the cache gets the cached pixels")
        }
        let listed = try tileSource("source", flow(source: "  kind: cached_tiles\n  path: \(cache.path)", stages: "  - stage: pretrain")).produce()
        XCTAssertEqual(listed.count, 6)
        XCTAssertTrue(listed.allSatisfy { $0.cacheEntry != nil && $0.image.width == 0 }, "references, not pixels")
    }

    func testExportWritesOneFilePerTileAndTheTileTableAtTheEnd() throws {
        let rois = try writeColourROIs(into: folder.appendingPathComponent("rois"), perClass: 1)
        let text = flow(source: "  kind: roi_folder\n  path: \(rois.path)", stages: "  - stage: decode\n  - stage: export\n    folder: out")
        let tiles = try decodingStage("decode", text).run(try imageSource("source", text).produce())
        let export = try finalStage("export", text)
        for tile in tiles { try export.process(tile) }
        let out = folder.appendingPathComponent("run/out")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent("tiles.csv").path), "the table is written when the input ends")
        try export.finish()
        XCTAssertEqual(export.counters["export.tiles"], 2)
        let table = try CSVTable(path: out.appendingPathComponent("tiles.csv").path)
        XCTAssertEqual(table.rows.count, 2)
        for row in table.rows {
            XCTAssertEqual(try ImageFile.read(out.appendingPathComponent(row.values["file"]!).path).width, 64)
        }
    }

    // MARK: training and evaluation stages

    /// pretrain → finetune (from the pretrained encoder) → evaluate_slides and slide_mil, each
    /// stage on its own harness, fed the references a `cache` harness emitted.
    func testTrainingAndEvaluationStagesEachOnTheirOwn() throws {
        let rois = try writeColourROIs(into: folder.appendingPathComponent("rois"), perClass: 8)
        let cache = folder.appendingPathComponent("cache")
        let run = folder.appendingPathComponent("run")
        let roiFlow = flow(source: "  kind: roi_folder\n  path: \(rois.path)", stages: """
              - stage: decode
              - stage: cache
                path: \(cache.path)
              - stage: pretrain
                from: cache
                steps: 3
                batch: 4
                reconstructions: 2
              - stage: finetune
                from: cache
                init: \(run.appendingPathComponent("pretrain/checkpoint").path)
                epochs: 2
                batch: 4
                validation_fraction: 0.25
                test_fraction: 0.25
            """)
        let cached = try tileStage("cache", roiFlow).run(try decodingStage("decode", roiFlow).run(try imageSource("source", roiFlow).produce()))
        XCTAssertTrue(cached.allSatisfy { $0.cacheEntry != nil })

        let pretrain = try finalStage("pretrain", roiFlow)
        XCTAssertEqual(try pretrain.run(cached).count, 0, "a final stage emits nothing")
        XCTAssertEqual(pretrain.counters["pretrain.steps"], 3)
        XCTAssertTrue(FileManager.default.fileExists(atPath: run.appendingPathComponent("pretrain/checkpoint/checkpoint.json").path))
        XCTAssertTrue(FileManager.default.fileExists(atPath: run.appendingPathComponent("pretrain/reconstruction-1.png").path))

        let finetune = try finalStage("finetune", roiFlow)
        try finetune.run(cached)
        XCTAssertEqual(finetune.counters["finetune.initialised_from_pretrained"], 1)
        XCTAssertEqual(finetune.counters["finetune.test_tiles"], 4)
        // Pictures for the report: the loss curves, the validation curve (one point per epoch), ROC and confusion.
        XCTAssertEqual(pretrain.pictures.map(\.path), ["pretrain/loss.svg"])
        // A ROC curve needs both classes among the test tiles (absent otherwise: the AUC is undefined).
        let metrics = try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("finetune/metrics.json"))) as! [String: Any]
        let bothClasses = (metrics["confusion"] as! [[Int]]).allSatisfy { $0.reduce(0, +) > 0 }
        XCTAssertEqual(finetune.pictures.map(\.path), ["finetune/loss.svg", "finetune/validation.svg"] + (bothClasses ? ["finetune/roc.svg"] : []) + ["finetune/confusion.svg"])
        let validation = try String(contentsOf: run.appendingPathComponent("finetune/validation.svg"), encoding: .utf8)
        let points = validation.components(separatedBy: "points=\"")[1].prefix { $0 != "\"" }.split(separator: " ")
        XCTAssertEqual(points.count, 2, "two epochs")
        let confusion = try String(contentsOf: run.appendingPathComponent("finetune/confusion.svg"), encoding: .utf8)
        XCTAssertTrue(confusion.contains(">pink<") && confusion.contains(">purple<"), confusion)
        XCTAssertNotNil(finetune.metrics["finetune.test_accuracy"])
        XCTAssertThrowsError(try finetune.process(Tile(source: "x", column: 0, row: 0, scaleIndex: 0, level0X: 0, level0Y: 0, requestedMicronsPerPixel: 1,
                                                       effectiveMicronsPerPixel: 1, tissueFraction: 1, image: RGBImage(width: 0, height: 0, pixels: [])))) { error in
            XCTAssertTrue("\(error)".contains("no label"), "\(error)")
        }

        // Slides: two purple-rich and two pink, their tiles cached as a flow would.
        let slides = try writeSlides(4, purple: { $0 % 2 == 0 })
        let labels = folder.appendingPathComponent("labels.csv")
        try "slide,patient,label\ns0.tif,p0,tumour\ns1.tif,p1,normal\ns2.tif,p2,tumour\ns3.tif,p3,normal\n".write(to: labels, atomically: true, encoding: .utf8)
        let slideFlow = flow(source: slidesSource(slides, extra: "  labels: \(labels.path)"), stages: """
              - stage: tissue
              - stage: tiles
                mpp: 1.0
                size: 64
                min_tissue: 0.9
              - stage: cache
                path: \(folder.appendingPathComponent("slide-cache").path)
              - stage: evaluate_slides
                from: cache
                checkpoint: \(run.appendingPathComponent("finetune/best").path)
                heatmap_class: purple
                workers: 2
              - stage: evaluate_slides
                name: one_at_a_time
                from: cache
                checkpoint: \(run.appendingPathComponent("finetune/best").path)
                heatmap_class: purple
              - stage: slide_mil
                from: cache
                checkpoint: \(run.appendingPathComponent("pretrain/checkpoint").path)
                epochs: 5
                folds: 2
                cache: \(folder.appendingPathComponent("embeddings").path)
            """)
        let slideItems = try slideStage("tissue", slideFlow).run(try slideSource("source", slideFlow).produce())
        let slideTiles = try tileStage("cache", slideFlow).run(try tilingStage("tiles", slideFlow).run(slideItems))
        XCTAssertEqual(slideTiles.count, 4 * 2 * 3)

        let evaluate = try finalStage("evaluate_slides", slideFlow)
        try evaluate.run(slideTiles)
        let scores = try CSVTable(path: run.appendingPathComponent("evaluate_slides/slide_scores.csv").path)
        XCTAssertEqual(scores.rows.count, 4)
        XCTAssertTrue(scores.rows.allSatisfy { $0.values["tiles"] == "6" }, "\(scores.rows.map(\.values))")
        XCTAssertTrue(evaluate.failures.isEmpty, "\(evaluate.failures)")
        XCTAssertGreaterThan(evaluate.metrics["evaluate_slides.images_per_second"] ?? 0, 0)
        // The predictions as GeoJSON (QuPath detections) agree with the tile table: the same squares in
        // level-0 pixels, the same probabilities.
        let table = try CSVTable(path: run.appendingPathComponent("evaluate_slides/s0.tiles.csv").path)
        let geo = try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("evaluate_slides/s0.predictions.geojson"))) as! [String: Any]
        XCTAssertEqual(geo["type"] as? String, "FeatureCollection")
        let features = geo["features"] as! [[String: Any]]
        XCTAssertEqual(features.count, table.rows.count)
        for (feature, row) in zip(features, table.rows.map(\.values)) {
            let ring = ((feature["geometry"] as! [String: Any])["coordinates"] as! [[[Double]]])[0]
            let (x, y, size) = (Double(row["level0_x"]!)!, Double(row["level0_y"]!)!, Double(row["level0_size"]!)!)
            XCTAssertEqual(ring, [[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]])
            let properties = feature["properties"] as! [String: Any]
            XCTAssertEqual(properties["objectType"] as? String, "detection")
            let measurements = properties["measurements"] as! [String: Double]
            for name in ["pink", "purple"] { XCTAssertEqual(measurements["p_\(name)"]!, Double(row["p_\(name)"]!)!, accuracy: 1e-5) }
            let predicted = measurements["p_pink"]! >= measurements["p_purple"]! ? "pink" : "purple"
            XCTAssertEqual((properties["classification"] as! [String: Any])["name"] as? String, predicted)
        }
        // And they load back through the annotation reader (as a QuPath export would) with the same squares and classes.
        let (loaded, _) = try Annotation.read(geoJSON: run.appendingPathComponent("evaluate_slides/s0.predictions.geojson"))
        XCTAssertEqual(loaded.count, table.rows.count)
        for (annotation, feature) in zip(loaded, features) {
            let ring = ((feature["geometry"] as! [String: Any])["coordinates"] as! [[[Double]]])[0]
            XCTAssertTrue(annotation.rings.count == 1 && annotation.rings[0].map { [$0.x, $0.y] } == ring)
            XCTAssertEqual(annotation.classification, ((feature["properties"] as! [String: Any])["classification"] as! [String: Any])["name"] as? String)
        }
        // Two slides at a time on one model give exactly what one at a time gives.
        try finalStage("one_at_a_time", slideFlow).run(slideTiles)
        for file in ["slide_scores.csv"] + (0..<4).map({ "s\($0).tiles.csv" }) {
            XCTAssertEqual(try Data(contentsOf: run.appendingPathComponent("evaluate_slides/\(file)")),
                           try Data(contentsOf: run.appendingPathComponent("one_at_a_time/\(file)")), file)
        }

        let mil = try finalStage("slide_mil", slideFlow)
        try mil.run(slideTiles)
        XCTAssertEqual(mil.counters["slide_mil.embeddings_computed"], 4)
        let folds = try String(contentsOf: run.appendingPathComponent("slide_mil/cross_validation.csv"), encoding: .utf8)
        XCTAssertEqual(folds.split(separator: "\n").count, 5, folds)
    }

    // MARK: the harness itself

    func testTheHarnessStopsEmittingWhenTheRunStopsAndRefusesMisuse() throws {
        let rois = try writeColourROIs(into: folder.appendingPathComponent("rois"), perClass: 1)
        let text = flow(source: "  kind: roi_folder\n  path: \(rois.path)", stages: "  - stage: decode")
        let source = try imageSource("source", text)
        XCTAssertThrowsError(try source.finish())
        let decode = try decodingStage("decode", text)
        XCTAssertThrowsError(try decode.produce())
        let images = try source.produce()
        decode.stop()
        XCTAssertThrowsError(try decode.process(images[0])) { error in XCTAssertTrue(error is FlowStopped, "\(error)") }
        XCTAssertEqual(decode.outputs.count, 0)
        XCTAssertThrowsError(try decodingStage("tiles", text)) { error in
            XCTAssertTrue("\(error)".contains("no step named 'tiles'"), "\(error)")
        }
        XCTAssertThrowsError(try tileStage("decode", text)) { error in
            XCTAssertTrue("\(error)".contains("'decode' is a `decode` step, which reads ImageItem and emits Tile"), "\(error)")
        }
    }
}
