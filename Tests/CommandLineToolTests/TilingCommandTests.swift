import Foundation
import Slides
import Stages
import Tiling
import XCTest

/// `ssmamba tissue | tiles | stain` on the real samples, as a user runs them.
final class TilingCommandTests: XCTestCase {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func sample(_ name: String) throws -> String {
        let path = Self.repository.appendingPathComponent("data/samples/\(name)").path
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("run `make samples` (make test does it)") }
        return path
    }

    /// A slide whose path holds a comma and a quote: the tile table quotes it (RFC 4180), so the
    /// table reads back with the path whole and every column in its place.
    func testTileTablesQuotePathsWithCommas() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("quoted-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let slide = folder.appendingPathComponent("case 7, \"left\".svs")
        try FileManager.default.copyItem(atPath: try sample("cmu_small_region.svs"), toPath: slide.path)
        let out = folder.appendingPathComponent("tiles")
        let result = try BuiltTool.run(["tiles", slide.path, "--mpp", "2", "--size", "64", "--out", out.path])
        XCTAssertEqual(result.status, 0, result.output)
        let table = try CSVTable(path: out.appendingPathComponent("tiles.csv").path)
        XCTAssertEqual(table.header, TileTable.columns)
        XCTAssertGreaterThan(table.rows.count, 0)
        for row in table.rows.map(\.values) {
            XCTAssertEqual(row["slide"], slide.path)
            XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent(row["file"]!).path), row["file"]!)
            XCTAssertEqual(row["level0_size"], "256.51")  // 64 px at 2 µm/px over a 0.499 µm/px slide
        }
    }

    /// A non-TIFF vendor slide (the Hamamatsu VMS sample, read through OpenSlide) inspected, tiled
    /// and evaluated as a user would: `inspect`, `tiles`, then `eval` on its folder (the default
    /// slide pattern includes `.vms`).
    func testAHamamatsuVMSSlideIsInspectedTiledAndEvaluated() throws {
        let slide = try sample("hamamatsu-vms/hgsc_nest.vms")
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vms-cli-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }

        let inspect = try BuiltTool.run(["inspect", slide, "--json"])
        XCTAssertEqual(inspect.status, 0, inspect.output)
        let info = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(inspect.output.utf8)) as? [String: Any])
        XCTAssertEqual(info["vendor"] as? String, "hamamatsu")
        XCTAssertEqual(info["microns_per_pixel"] as? Double, 0.5)
        XCTAssertEqual(info["objective_power"] as? Double, 20)
        XCTAssertEqual(info["associated_images"] as? [String], ["macro"])
        XCTAssertEqual((info["levels"] as? [Any])?.count, 6)

        // 1280 px at 0.5 µm/px is 640 µm: 64-px tiles at 2 µm/px make a 5×5 grid, all of it tissue.
        let tiles = folder.appendingPathComponent("tiles")
        let tiled = try BuiltTool.run(["tiles", slide, "--mpp", "2", "--size", "64", "--min-tissue", "0.5", "--out", tiles.path])
        XCTAssertEqual(tiled.status, 0, tiled.output)
        let table = try CSVTable(path: tiles.appendingPathComponent("tiles.csv").path)
        XCTAssertEqual(table.rows.count, 25)
        XCTAssertEqual(Set(table.rows.compactMap { $0.values["level0_size"] }), ["256.00"])

        try writeRandomClassifier(classes: ["stroma", "tumour"], to: folder.appendingPathComponent("model"), seed: 3)
        let out = folder.appendingPathComponent("run").path
        let evaluated = try BuiltTool.run(["eval", "--checkpoint", folder.appendingPathComponent("model").path,
                                           "--slides", (slide as NSString).deletingLastPathComponent, "--mpp", "2", "--out", out])
        XCTAssertEqual(evaluated.status, 0, evaluated.output)
        let scores = try CSVTable(path: out + "/evaluate_slides/slide_scores.csv")
        XCTAssertEqual(scores.rows.count, 1, "one slide in the folder (the stripes and map are not slides)")
        XCTAssertEqual(scores.rows.first?.values["slide"], slide)
        XCTAssertEqual(scores.rows.first?.values["tiles"], "25")
    }

    func testTissueTilesAndStainCommands() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tiling-cli-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let slide = try sample("cmu_small_region.svs")

        let tissue = try BuiltTool.run(["tissue", slide, "--json", "--out", folder.appendingPathComponent("mask.tif").path])
        XCTAssertEqual(tissue.status, 0, tissue.output)
        let report = try JSONSerialization.jsonObject(with: Data(tissue.output.utf8)) as! [String: Any]
        let fraction = try XCTUnwrap(report["tissue_fraction"] as? Double)
        XCTAssertGreaterThan(fraction, 0.2)
        XCTAssertLessThan(fraction, 0.95)
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder.appendingPathComponent("mask.tif").path))

        let tiles = folder.appendingPathComponent("tiles")
        let exported = try BuiltTool.run(["tiles", slide, "--mpp", "1", "--size", "128", "--scales", "1,2", "--min-tissue", "0.8", "--out", tiles.path])
        XCTAssertEqual(exported.status, 0, exported.output)
        let rows = try CSVTable(path: tiles.appendingPathComponent("tiles.csv").path).rows.map(\.values)
        XCTAssertGreaterThan(rows.count, 0)
        XCTAssertEqual(rows.count % 2, 0, "two scales per position")
        let pngs = try FileManager.default.contentsOfDirectory(atPath: tiles.path).filter { $0.hasSuffix(".png") }
        XCTAssertEqual(pngs.count, rows.count)
        let finer = try BuiltTool.run(["tiles", slide, "--mpp", "0.25", "--size", "64", "--out", folder.appendingPathComponent("x").path])
        XCTAssertEqual(finer.status, 1)
        XCTAssertTrue(finer.output.contains("upsampled fake"), finer.output)

        let target = Self.repository.appendingPathComponent("Tests/TilingTests/Fixtures/stain/target.png").path
        let image = Self.repository.appendingPathComponent("Tests/TilingTests/Fixtures/stain/nest.png").path
        let saved = folder.appendingPathComponent("target.json").path
        let stained = try BuiltTool.run(["stain", "--method", "reinhard", "--target", target, image, "--out", folder.appendingPathComponent("out").path,
                                         "--save-target", saved])
        XCTAssertEqual(stained.status, 0, stained.output)
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder.appendingPathComponent("out/nest.png").path))
        let again = try BuiltTool.run(["stain", "--target", saved, image, "--out", folder.appendingPathComponent("again").path])
        XCTAssertEqual(again.status, 0, again.output)
        XCTAssertEqual(try Data(contentsOf: folder.appendingPathComponent("again/nest.png")), try Data(contentsOf: folder.appendingPathComponent("out/nest.png")),
                       "a saved target normalizes exactly as the fitted one")
        let wrong = try BuiltTool.run(["stain", "--method", "macenco", "--target", target, image, "--out", folder.path])
        XCTAssertNotEqual(wrong.status, 0)
        XCTAssertTrue(wrong.output.contains("macenko, reinhard, vahadane"), wrong.output)
    }

    /// PNG and JPEG images open as one-level slides: tissue, tiles and regions work on them.
    func testImagesAreOneLevelSlides() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("image-slides-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        func fraction(_ path: String) throws -> Double {
            let result = try BuiltTool.run(["tissue", path, "--json"])
            XCTAssertEqual(result.status, 0, result.output)
            let report = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as! [String: Any]
            return try XCTUnwrap(report["tissue_fraction"] as? Double)
        }
        // A real H&E crop (JPEG) is mostly tissue; a blank and an almost-white PNG are not.
        XCTAssertGreaterThan(try fraction(try sample("hgsc_nest.jpg")), 0.5)
        let white = folder.appendingPathComponent("white.png"), almost = folder.appendingPathComponent("almost-white.png")
        try PNGWriter.write(RGBImage(width: 300, height: 200, filling: (255, 255, 255)), to: white)
        var pixels = [UInt8](repeating: 0, count: 300 * 200 * 3)
        for i in 0..<pixels.count { pixels[i] = UInt8(238 + (i * 7919) % 12) }
        try PNGWriter.write(RGBImage(width: 300, height: 200, pixels: pixels), to: almost)
        XCTAssertLessThan(try fraction(white.path), 0.2)
        XCTAssertLessThan(try fraction(almost.path), 0.2)

        // Tiles of an image by µm/px (given, since an image records none), and a region by level.
        let tiles = folder.appendingPathComponent("tiles")
        let exported = try BuiltTool.run(["tiles", try sample("hgsc_nest.jpg"), "--mpp-override", "0.5", "--mpp", "1", "--size", "64", "--out", tiles.path])
        XCTAssertEqual(exported.status, 0, exported.output)
        XCTAssertGreaterThan(try FileManager.default.contentsOfDirectory(atPath: tiles.path).filter { $0.hasSuffix(".png") }.count, 50)
        let region = folder.appendingPathComponent("region.png")
        let read = try BuiltTool.run(["region", try sample("hgsc_nest.jpg"), "--x", "100", "--y", "200", "--width", "64", "--height", "32", "--level", "0", "--out", region.path])
        XCTAssertEqual(read.status, 0, read.output)
        let crop = try ImageFile.read(region.path), whole = try ImageFile.read(try sample("hgsc_nest.jpg"))
        XCTAssertEqual(crop.width, 64)
        XCTAssertEqual(crop[x: 5, y: 7, channel: 1], whole[x: 105, y: 207, channel: 1])
    }
}
