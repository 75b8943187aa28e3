import Foundation
import Randomness
import Tensors
import TileCache
import XCTest

/// The built `ssmamba` executable, run as a user would: help text, exit codes, error messages.
final class CommandLineTests: XCTestCase {
    var executable: URL { BuiltTool.executable }

    func run(_ arguments: [String]) throws -> (status: Int32, output: String) { try BuiltTool.run(arguments) }

    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("SlidesTests/Fixtures")

    func testHelpListsEverySubcommandAndVersionPrints() throws {
        let help = try run(["--help"])
        XCTAssertEqual(help.status, 0)
        for subcommand in ["inspect", "region", "tissue", "tiles", "stain", "run", "flow", "cache", "model", "selfcheck"] {
            XCTAssertTrue(help.output.contains("  \(subcommand)"), "help lacks \(subcommand):\n\(help.output)")
        }
        let version = try run(["--version"])
        XCTAssertEqual(version.status, 0)
        XCTAssertEqual(version.output.trimmingCharacters(in: .whitespacesAndNewlines), "0.1.0")
    }

    func testInspectJSONOfAPyramid() throws {
        let result = try run(["inspect", Self.fixtures.appendingPathComponent("pyramid_chain.tif").path, "--json"])
        XCTAssertEqual(result.status, 0, result.output)
        let object = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as! [String: Any]
        let levels = object["levels"] as! [[String: Any]]
        XCTAssertEqual(levels.count, 3)
        XCTAssertEqual(object["microns_per_pixel"] as! Double, 0.5, accuracy: 1e-6)
        // Each level's µm/px, as the text view shows it.
        for level in levels {
            XCTAssertEqual(level["microns_per_pixel"] as! Double, 0.5 * (level["downsample"] as! Double), accuracy: 1e-9)
        }
    }

    /// Every JSON the tool writes uses snake_case keys: saved stain targets, `model info --json`
    /// (reports: FlowGraphTests); targets saved before in camelCase still load.
    func testJSONKeysAreSnakeCase() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("json-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let image = Self.fixtures.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("TilingTests/Fixtures/stain/target.png").path
        for method in ["reinhard", "macenko"] {
            let saved = folder.appendingPathComponent("\(method).json")
            XCTAssertEqual(try run(["stain", "--method", method, "--target", image, "--save-target", saved.path]).status, 0)
            let text = try String(contentsOf: saved, encoding: .utf8)
            XCTAssertTrue(text.contains(method == "reinhard" ? "\"lab_means\"" : "\"stain_matrix\""), text)
            XCTAssertFalse(text.contains("labMeans") || text.contains("stainMatrix"), text)
        }
        let old = folder.appendingPathComponent("old.json")
        try #"{"method": "reinhard", "labMeans": [60, 20, -10], "labStandardDeviations": [10, 5, 5]}"#.write(to: old, atomically: true, encoding: .utf8)
        let reused = try run(["stain", "--target", old.path, image, "--out", folder.appendingPathComponent("out").path])
        XCTAssertEqual(reused.status, 0, reused.output)
        let info = try run(["model", "info", "ssmamba_micro", "--json"])
        XCTAssertTrue(info.output.contains("\"image_size\"") && !info.output.contains("imageSize"), info.output)
    }

    func testErrorsNameTheProblemAndExitNonZero() throws {
        let missing = try run(["inspect", "/nonexistent/slide.svs"])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.output.contains("/nonexistent/slide.svs"), missing.output)
        let model = try run(["model", "info", "ssmamba_huge"])
        XCTAssertNotEqual(model.status, 0)
        XCTAssertTrue(model.output.contains("known: ssmamba_micro, ssmamba_r1_tiny, ssmamba_small, ssmamba_tiny"), model.output)
        let region = try run(["region", Self.fixtures.appendingPathComponent("pyramid_chain.tif").path, "--x", "0", "--y", "0",
                              "--width", "8", "--height", "8", "--out", "/tmp/x.png"])
        XCTAssertNotEqual(region.status, 0)
        XCTAssertTrue(region.output.contains("exactly one of --level and --mpp"), region.output)
        let cache = try run(["cache", "verify", "/nonexistent/cache"])
        XCTAssertNotEqual(cache.status, 0)
        XCTAssertTrue(cache.output.contains("no cache here"), cache.output)
    }

    /// Run-time failures are errors (exit 1, what went wrong and what to do), not usage mistakes
    /// (exit 64 with the usage text).
    func testRuntimeFailuresAreNotUsageErrors() throws {
        let slide = Self.fixtures.appendingPathComponent("pyramid_chain.tif").path
        for arguments in [["inspect", "/nonexistent.svs"],
                          ["region", slide, "--x", "1000000", "--y", "0", "--width", "16", "--height", "16", "--level", "0", "--out", "/tmp/ssmamba-never.png"],
                          ["cache", "stats", "/nonexistent-cache"], ["cache", "verify", "/nonexistent-cache"]] {
            let result = try run(arguments)
            XCTAssertEqual(result.status, 1, "\(arguments): \(result.output)")
            XCTAssertFalse(result.output.contains("Usage:"), "\(arguments) printed the usage text: \(result.output)")
            XCTAssertTrue(result.output.contains("Error:"), "\(arguments): \(result.output)")
        }
        // An output folder that is a file: the folder and what to do, not the system's error domain.
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("ssmamba-a-file-\(UUID())")
        try Data("x".utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let tiles = try run(["tiles", slide, "--mpp-override", "0.5", "--mpp", "1", "--size", "16", "--out", file.path])
        XCTAssertEqual(tiles.status, 1, tiles.output)
        XCTAssertTrue(tiles.output.contains("cannot create the output folder") && !tiles.output.contains("NSCocoaErrorDomain"), tiles.output)
        // Output files in a folder that is a file or does not exist: said in words, for PNG and TIFF.
        for (arguments, message) in [
            (["region", slide, "--x", "0", "--y", "0", "--width", "8", "--height", "8", "--level", "0", "--out", file.path + "/x.tif"], "\(file.path) is a file, not a folder"),
            (["region", slide, "--x", "0", "--y", "0", "--width", "8", "--height", "8", "--level", "0", "--out", "/nonexistent-\(UUID())/x.png"], "does not exist; create it first"),
            (["tissue", slide, "--mpp-override", "0.5", "--out", file.path + "/mask.png"], "\(file.path) is a file, not a folder"),
        ] {
            let result = try run(arguments)
            XCTAssertEqual(result.status, 1, result.output)
            XCTAssertTrue(result.output.contains(message) && !result.output.contains("Domain") && !result.output.contains("TIFFOpen"), result.output)
        }
        // A usage mistake still shows the usage.
        let usage = try run(["region", slide, "--x", "0", "--y", "0", "--width", "16", "--height", "16", "--out", "/tmp/x.png"])
        XCTAssertEqual(usage.status, 64, usage.output)
        XCTAssertTrue(usage.output.contains("Usage:"), usage.output)
    }

    /// Extreme numbers on the command line are errors, not traps: sizes whose product overflows,
    /// coordinates near Int.max, µm/px so coarse the region spans infinity, a huge mask pixel.
    func testExtremeNumbersAreErrorsNotTraps() throws {
        let slide = Self.fixtures.appendingPathComponent("pyramid_chain.tif").path
        let out = ["--out", "/tmp/ssmamba-never-\(UUID()).png"]
        let cases: [([String], String)] = [
            (["--x", "0", "--y", "0", "--width", "4294967296", "--height", "4294967296", "--level", "0"], "too large for one read"),
            (["--x", "9223372036854775800", "--y", "0", "--width", "10", "--height", "10", "--level", "0"], "outside"),
            (["--x=-9223372036854775800", "--y", "0", "--width", "10", "--height", "10", "--mpp", "1", "--mpp-override", "0.5"], "outside"),
            (["--x", "0", "--y", "0", "--width", "10", "--height", "10", "--mpp", "1e308", "--mpp-override", "0.5"], "far beyond the slide"),
            (["--x", "0", "--y", "0", "--width", "10", "--height", "10", "--mpp", "1", "--mpp-override", "nan"], "outside 0.01…100"),
            (["--x", "0", "--y", "0", "--width", "10", "--height", "10", "--mpp", "1", "--mpp-override", "1e-300"], "outside 0.01…100"),
        ]
        for (arguments, message) in cases {
            let result = try run(["region", slide] + arguments + out)
            XCTAssertEqual(result.status, 1, "\(arguments): \(result.output)")
            XCTAssertTrue(result.output.contains(message), "\(arguments): \(result.output)")
        }
        let mask = try run(["tissue", slide, "--mpp-override", "0.5", "--mask-mpp", "1e308"])
        XCTAssertEqual(mask.status, 64, mask.output)
        XCTAssertTrue(mask.output.contains("--mask-mpp must be within 1…64"), mask.output)
    }

    /// Hints name options that exist, and options are not silently overridden: region's upsampling
    /// hint names --allow-upsampling (which region now has); a saved target of one stain method
    /// with --method of another is an error (it ran the saved method before), in the flow stage too.
    func testHintsNameRealOptionsAndSavedStainMethodsAreNotSilentlySwapped() throws {
        let slide = Self.fixtures.appendingPathComponent("pyramid_chain.tif").path
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("hints-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let fine = ["region", slide, "--mpp-override", "0.5", "--mpp", "0.1", "--x", "0", "--y", "0", "--width", "16", "--height", "16",
                    "--out", folder.appendingPathComponent("up.png").path]
        let refused = try run(fine)
        XCTAssertEqual(refused.status, 1, refused.output)
        XCTAssertTrue(refused.output.contains("--allow-upsampling"), refused.output)
        XCTAssertEqual(try run(fine + ["--allow-upsampling"]).status, 0)

        let image = Self.fixtures.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("TilingTests/Fixtures/stain/target.png").path
        let saved = folder.appendingPathComponent("macenko.json").path
        XCTAssertEqual(try run(["stain", "--target", image, "--save-target", saved]).status, 0)
        let swapped = try run(["stain", "--method", "reinhard", "--target", saved, image, "--out", folder.appendingPathComponent("out").path])
        XCTAssertEqual(swapped.status, 1, swapped.output)
        XCTAssertTrue(swapped.output.contains("is a saved macenko target, not reinhard"), swapped.output)
        let plain = try run(["stain", "--target", saved, image, "--out", folder.appendingPathComponent("out").path])
        XCTAssertEqual(plain.status, 0, plain.output)
        XCTAssertTrue(plain.output.contains("macenko: 1 images normalized"), plain.output)

        let flow = folder.appendingPathComponent("stain.yaml")
        try """
        flow: swapped
        output: \(folder.appendingPathComponent("run").path)
        source:
          kind: slides
          path: \(slide)
          mpp_override: 0.5
        stages:
          - stage: tissue
          - stage: tiles
            mpp: 1
            size: 16
          - stage: stain
            method: reinhard
            target: \(saved)

        """.write(to: flow, atomically: true, encoding: .utf8)
        let stage = try run(["run", flow.path])
        XCTAssertEqual(stage.status, 1, stage.output)
        XCTAssertTrue(stage.output.contains("is a saved macenko target but the stage says `method: reinhard`"), stage.output)
    }

    func testCacheVerifyRepairRemovesDamagedRecords() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("repair-cli-\(UUID())")
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try TileStore(path: directory.path)
        let key = TileKey(source: 1, parameters: 2, x: 0, y: 0, micronsPerPixel: 0.5)
        try store.write([(key, CachedTile(channels: 3, height: 4, width: 4, pixels: [UInt8](repeating: 9, count: 48), level0Origin: (0, 0),
                                          requestedMicronsPerPixel: 0.5, effectiveMicronsPerPixel: 0.5, source: 1, parameters: 2))])
        var record = try store.environment.read { Array(try XCTUnwrap(try $0.get(key.bytes))) }
        record[record.count - 1] ^= 0x22
        try store.environment.put([(key: key.bytes, value: record)], overwrite: true)
        let found = try run(["cache", "verify", directory.path])
        XCTAssertEqual(found.status, 1, found.output)
        XCTAssertTrue(found.output.contains("cache verify --repair"), found.output)
        let repaired = try run(["cache", "verify", "--repair", directory.path])
        XCTAssertEqual(repaired.status, 0, repaired.output)
        XCTAssertTrue(repaired.output.contains("removed 1 damaged of 1 records"), repaired.output)
        XCTAssertEqual(try run(["cache", "verify", directory.path]).status, 0)
    }
}

/// Damaged cache files through the built tool: `cache verify`, `cache stats` and a flow that
/// trains from the cache exit with a message (1 for damage), never on a signal.
final class DamagedCacheCommandTests: XCTestCase {
    func run(_ arguments: [String]) throws -> (exited: Bool, status: Int32, output: String) { try BuiltTool.outcome(arguments) }

    func testDamagedCacheFilesEndInAnErrorNotASignal() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("damaged-cli-\(UUID())")
        defer { try? FileManager.default.removeItem(at: folder) }
        let original = folder.appendingPathComponent("original")
        do {
            let store = try TileStore(path: original.path)
            var rng = RandomGenerator(seed: 3)
            for start in stride(from: 0, to: 120, by: 20) {
                try store.write((start..<(start + 20)).map { i in
                    let key = TileKey(source: 9, parameters: 4, x: i * 64, y: 0, micronsPerPixel: 0.5)
                    var pixels = [UInt8](repeating: 0, count: 64 * 64 * 3)
                    for p in pixels.indices { pixels[p] = UInt8(truncatingIfNeeded: p / 64 + i + rng.integer(below: 4)) }
                    return (key, CachedTile(channels: 3, height: 64, width: 64, pixels: pixels, level0Origin: (i * 64, 0),
                                            requestedMicronsPerPixel: 0.5, effectiveMicronsPerPixel: 0.5, source: 9, parameters: 4))
                })
            }
        }
        let file = [UInt8](try Data(contentsOf: original.appendingPathComponent("data.mdb")))
        let copy = folder.appendingPathComponent("copy")
        let flow = folder.appendingPathComponent("read.yaml")
        try """
        flow: read-damaged
        output: \(folder.appendingPathComponent("run").path)
        source:
          kind: cached_tiles
          path: \(copy.path)
        stages:
          - stage: pretrain
            steps: 1
            batch: 4
            readers: 1

        """.write(to: flow, atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(at: copy, withIntermediateDirectories: true)
        try Data(file).write(to: copy.appendingPathComponent("data.mdb"))
        let intact = try run(["run", flow.path])
        XCTAssertEqual(intact.status, 0, "the reading flow on the undamaged cache\n\(intact.output)")
        var rng = RandomGenerator(seed: 11)
        var damagedSeen = 0
        for iteration in 0..<40 {
            var bytes = file
            switch iteration % 4 {
            case 0: bytes = Array(bytes.prefix(4096 * (2 + rng.integer(below: bytes.count / 4096 - 2))))
            case 1: bytes[4096 * rng.integer(below: 2) + 16 + rng.integer(below: 144)] ^= UInt8(1 << rng.integer(below: 8))
            case 2:
                let page = rng.integer(below: bytes.count / 4096)
                bytes[page * 4096 + rng.integer(below: 64)] ^= UInt8(1 << rng.integer(below: 8))
            default: bytes[rng.integer(below: bytes.count)] = UInt8(rng.integer(below: 256))
            }
            try? FileManager.default.removeItem(at: copy)
            try FileManager.default.createDirectory(at: copy, withIntermediateDirectories: true)
            try Data(bytes).write(to: copy.appendingPathComponent("data.mdb"))
            let verify = try run(["cache", "verify", copy.path])
            XCTAssertTrue(verify.exited, "mutation \(iteration): cache verify died on a signal\n\(verify.output)")
            XCTAssertTrue([0, 1].contains(verify.status), "mutation \(iteration): \(verify.output)")
            if verify.status == 1 {
                damagedSeen += 1
                XCTAssertTrue(verify.output.contains(copy.path) && (verify.output.contains("damaged") || verify.output.contains("corrupt")), verify.output)
            }
            let stats = try run(["cache", "stats", copy.path])
            XCTAssertTrue(stats.exited, "mutation \(iteration): cache stats died on a signal\n\(stats.output)")
            if iteration % 4 == 0 || iteration < 8 {
                let flowRun = try run(["run", flow.path])
                XCTAssertTrue(flowRun.exited, "mutation \(iteration): the reading flow died on a signal\n\(flowRun.output)")
                if verify.status == 1 && flowRun.status == 0 {
                    XCTAssertTrue(flowRun.output.contains("corrupt") || flowRun.output.contains("damaged") || flowRun.output.contains("failed"), flowRun.output)
                }
            }
        }
        XCTAssertGreaterThan(damagedSeen, 10)
    }
}
