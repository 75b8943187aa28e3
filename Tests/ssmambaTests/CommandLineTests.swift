import Foundation
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
        XCTAssertEqual((object["levels"] as! [[String: Any]]).count, 3)
        XCTAssertEqual(object["microns_per_pixel"] as! Double, 0.5, accuracy: 1e-6)
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
        // A usage mistake still shows the usage.
        let usage = try run(["region", slide, "--x", "0", "--y", "0", "--width", "16", "--height", "16", "--out", "/tmp/x.png"])
        XCTAssertEqual(usage.status, 64, usage.output)
        XCTAssertTrue(usage.output.contains("Usage:"), usage.output)
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
