import Foundation
import SSMamba
import Slides
import Tensors
import Stages
import Tiling
import XCTest

/// `ssmamba eval`: streaming evaluation without a flow file.
final class EvalCommandTests: XCTestCase {
    /// Two 1024×768 slides at 0.5 µm/px whose left quarter is glass, and a random classifier.
    func makeSlidesAndModel(in folder: URL) throws {
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("slides"), withIntermediateDirectories: true)
        try writeRandomClassifier(classes: ["benign", "tumour"], to: folder.appendingPathComponent("model"), seed: 1)
        for name in ["a", "b"] {
            try PyramidWriter.write(width: 1024, height: 768, to: folder.appendingPathComponent("slides/\(name).tif"), micronsPerPixel: 0.5) { level, x, _, w, h in
                // Level-0 columns left of 256 are glass, the rest tissue, at every level of the pyramid.
                var pixels = [UInt8](repeating: 0, count: w * h * 3)
                for row in 0..<h { for column in 0..<w {
                    let colour: [UInt8] = (x + column) << level < 256 ? [242, 241, 243] : [200, 120, 180]
                    pixels.replaceSubrange(((row * w + column) * 3)..<((row * w + column) * 3 + 3), with: colour)
                } }
                return RGBImage(width: w, height: h, pixels: pixels)
            }
        }
    }

    func testEvaluatesSlidesAndWritesScoresAndHeatmaps() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("eval-\(UUID())")
        defer { try? FileManager.default.removeItem(at: folder) }
        try makeSlidesAndModel(in: folder)
        let out = folder.appendingPathComponent("run").path
        let result = try BuiltTool.run(["eval", "--checkpoint", folder.appendingPathComponent("model").path, "--slides", folder.appendingPathComponent("slides").path,
                                        "--mpp", "2", "--heatmap-class", "tumour", "--out", out,  // the default pattern finds .tif slides
                                        "--cache", folder.appendingPathComponent("cache").path])
        XCTAssertEqual(result.status, 0, result.output)
        let scores = try String(contentsOfFile: out + "/evaluate_slides/slide_scores.csv", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(scores.first, "slide,tiles,mean_p_benign,mean_p_tumour,predicted")
        XCTAssertEqual(scores.count, 3)
        for row in scores.dropFirst() {
            // 1024×768 at 0.5 µm/px, 64-px tiles at 2 µm/px: a 4×3 grid, the first column glass.
            XCTAssertEqual(row.split(separator: ",")[1], "9", "tissue tiles classified: \(row)")
        }
        for name in ["a", "b"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/evaluate_slides/\(name).heatmap.tif"))
            XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/evaluate_slides/\(name).overlay.png"))
            XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/evaluate_slides/\(name).probabilities.ome.tif"))
        }
        let unknown = try BuiltTool.run(["eval", "--checkpoint", folder.appendingPathComponent("model").path, "--slides", folder.appendingPathComponent("slides").path,
                                         "--pattern", "*.tif", "--heatmap-class", "lymph", "--out", out])
        XCTAssertEqual(unknown.status, 1)
        XCTAssertTrue(unknown.output.contains("--heatmap-class 'lymph' is not one of the checkpoint's classes: benign, tumour"), unknown.output)
    }

    /// The probability map and the colour heatmap lie over the slide at its physical size: at the
    /// same physical point (µm from the top-left corner), the slide read through OpenSlide shows
    /// tissue or glass, the float map holds the tile table's probability (NaN on glass), and the
    /// heatmap pyramid, read through OpenSlide as a multi-level image, shows that probability's
    /// colour. With a stride of half a tile each map pixel averages the four tiles over it.
    func testProbabilityMapsOverlayTheSlideAtItsPhysicalSize() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("eval-maps-\(UUID())")
        defer { try? FileManager.default.removeItem(at: folder) }
        try makeSlidesAndModel(in: folder)
        for tileStride in [64, 32] {
            let out = folder.appendingPathComponent("run-\(tileStride)").path
            let result = try BuiltTool.run(["eval", "--checkpoint", folder.appendingPathComponent("model").path, "--slides", folder.appendingPathComponent("slides").path,
                                            "--mpp", "2", "--stride", "\(tileStride)", "--heatmap-class", "tumour", "--out", out])
            XCTAssertEqual(result.status, 0, result.output)
            let slide = try Slide.open(folder.appendingPathComponent("slides/a.tif").path, backend: .openslide)
            let map = try FloatPyramidReader.read(out + "/evaluate_slides/a.probabilities.ome.tif")
            let heatmap = try Slide.open(out + "/evaluate_slides/a.heatmap.tif", backend: .openslide)
            XCTAssertEqual(map.names, ["benign", "tumour"])
            XCTAssertTrue(map.description.contains("PhysicalSizeX=") && map.description.contains("SizeC=\"2\""), map.description)
            let mapMPP = try XCTUnwrap(map.micronsPerPixel), heatMPP = try XCTUnwrap(heatmap.micronsPerPixel)
            XCTAssertEqual(mapMPP, heatMPP, accuracy: 1e-6)
            XCTAssertEqual(Double(map.planes[0][0].width) * mapMPP, 1024 * 0.5, accuracy: mapMPP, "the map spans the slide's 512 µm")
            XCTAssertGreaterThan(map.planes[1].count, 1, "the float map has reduced levels")
            XCTAssertGreaterThan(heatmap.levels.count, 1, "OpenSlide sees the heatmap's levels")
            XCTAssertEqual(heatmap.vendor, "generic-tiff")

            // The tile table: level-0 corner, side and p_tumour per tile.
            let table = try CSVTable(path: out + "/evaluate_slides/a.tiles.csv")
            let tiles = table.rows.map { row in
                (x: Double(row.values["level0_x"]!)!, y: Double(row.values["level0_y"]!)!, size: Double(row.values["level0_size"]!)!,
                 p: Double(row.values["p_tumour"]!)!)
            }
            XCTAssertEqual(tiles.count, tileStride == 64 ? 9 : 6 * 5, "3×3 tissue tiles; with half a tile's stride 6×5 (those half over glass have the least tissue, 0.5)")
            var checked = 0, mostTilesOver = 0
            for micronsX in stride(from: 5.0, to: 512, by: 23) {
                for micronsY in stride(from: 7.0, to: 384, by: 29) {
                    let level0 = (x: micronsX / 0.5, y: micronsY / 0.5)
                    let over = tiles.filter { t in
                        let inX = level0.x >= t.x && level0.x < t.x + t.size
                        let inY = level0.y >= t.y && level0.y < t.y + t.size
                        return inX && inY
                    }
                    // Clear of tile edges, so that the map pixel under the point lies in the same tiles.
                    let clear = tiles.allSatisfy { t in
                        let farX = abs(t.x - level0.x) > 8 && abs(t.x + t.size - level0.x) > 8
                        let farY = abs(t.y - level0.y) > 8 && abs(t.y + t.size - level0.y) > 8
                        return farX && farY
                    }
                    guard clear || over.isEmpty else { continue }
                    let value = map.planes[1][0].value(x: Int(micronsX / mapMPP), y: Int(micronsY / mapMPP))
                    let pixel = try slide.readRegion(level0Origin: (Int(level0.x), Int(level0.y)), size: (1, 1), level: 0).pixels
                    let shown = try heatmap.readRegion(level0Origin: (Int(micronsX / heatMPP), Int(micronsY / heatMPP)), size: (1, 1), level: 0).pixels
                    XCTAssertEqual(pixel, level0.x < 256 ? [242, 241, 243] : [200, 120, 180], "the slide's glass and tissue")
                    if over.isEmpty {
                        XCTAssertTrue(value.isNaN, "no tile at (\(micronsX), \(micronsY)) µm")
                        continue
                    }
                    let expected = over.map(\.p).reduce(0, +) / Double(over.count)
                    XCTAssertEqual(Double(value), expected, accuracy: 1e-4, "(\(micronsX), \(micronsY)) µm over \(over.count) tile(s)")
                    let colour = HeatmapPictures.colour(Float(expected))
                    for (got, want) in zip(shown, [colour.0, colour.1, colour.2]) { XCTAssertLessThanOrEqual(abs(Int(got) - Int(want)), 2, "\(shown) for p = \(expected)") }
                    checked += 1
                    mostTilesOver = max(mostTilesOver, over.count)
                }
            }
            XCTAssertGreaterThan(checked, 100)
            XCTAssertEqual(mostTilesOver, tileStride == 64 ? 1 : 4, "points under one tile, or with overlap under four")
            let overlay = try ImageFile.read(out + "/evaluate_slides/a.overlay.png")
            XCTAssertEqual(overlay.width, 1024, "the thumbnail's longer side")
            XCTAssertEqual(overlay.height, 768 + HeatmapPictures.legendHeight, "the thumbnail above the legend")
        }
    }

    /// A checkpoint that does not fit the flow's tiles (64-px model, 32-px tiles): every slide
    /// fails, so the run fails (exit 1, the reason on the last line), not "completed".
    func testAFlowWhoseSlidesAllFailToEvaluateFails() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("eval-misfit-\(UUID())")
        defer { try? FileManager.default.removeItem(at: folder) }
        try makeSlidesAndModel(in: folder)
        let flow = folder.appendingPathComponent("misfit.yaml")
        try """
        flow: misfit
        output: \(folder.appendingPathComponent("run").path)
        source:
          kind: slides
          path: \(folder.appendingPathComponent("slides").path)
          pattern: "*.tif"
        stages:
          - stage: tissue
          - stage: tiles
            mpp: 2
            size: 32
          - stage: cache
            path: \(folder.appendingPathComponent("cache").path)
          - stage: evaluate_slides
            checkpoint: \(folder.appendingPathComponent("model").path)

        """.write(to: flow, atomically: true, encoding: .utf8)
        let result = try BuiltTool.run(["run", flow.path])
        XCTAssertEqual(result.status, 1, result.output)
        let last = result.output.split(separator: "\n").last.map(String.init) ?? ""
        XCTAssertTrue(last.hasPrefix("failed: stage 'evaluate_slides' cannot go on"), last)
        XCTAssertTrue(last.contains("no slide could be evaluated (2 failed") && last.contains("the model takes 64×64"), last)
    }

    /// `ssmamba eval` under mpirun: the slides are shared out between 2 ranks, and the run writes
    /// the files one process writes, with the same scores.
    func testSlidesAreSharedOutBetweenRanks() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("eval-mpi-\(UUID())")
        defer { try? FileManager.default.removeItem(at: folder) }
        try makeSlidesAndModel(in: folder)
        let arguments = ["eval", "--checkpoint", folder.appendingPathComponent("model").path, "--slides", folder.appendingPathComponent("slides").path,
                         "--mpp", "2", "--cache", folder.appendingPathComponent("cache").path]
        let single = try BuiltTool.run(arguments + ["--out", folder.appendingPathComponent("single").path])
        XCTAssertEqual(single.status, 0, single.output)
        let (status, output) = try BuiltTool.mpirun(2, arguments + ["--out", folder.appendingPathComponent("parallel").path])
        XCTAssertEqual(status, 0, output)
        for file in ["slide_scores.csv", "a.tiles.csv", "b.tiles.csv", "a.overlay.png", "b.heatmap.tif", "a.probabilities.ome.tif"] {
            let one = try Data(contentsOf: folder.appendingPathComponent("single/evaluate_slides/\(file)"))
            let two = try Data(contentsOf: folder.appendingPathComponent("parallel/evaluate_slides/\(file)"))
            XCTAssertEqual(one, two, file)
        }
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("parallel/report.json"))) as! [String: Any]
        XCTAssertEqual((report["counters"] as? [String: Int])?["evaluate_slides.slides"], 2)
        XCTAssertEqual((report["counters"] as? [String: Int])?["evaluate_slides.processes"], 2)
    }
}
