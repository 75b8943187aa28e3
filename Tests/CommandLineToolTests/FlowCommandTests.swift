import Foundation
import XCTest

/// `ssmamba run`, `flow check` and `cache warm` as a user runs them, including SIGKILL during a
/// warm-up (then a rerun) and Ctrl-C during a run.
final class FlowCommandTests: XCTestCase {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    var executable: URL { BuiltTool.executable }
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("flow-cli-\(UUID())")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("slides"), withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    func process(_ arguments: [String]) -> Process { BuiltTool.process(arguments, in: folder) }

    func run(_ arguments: [String]) throws -> (status: Int32, output: String) { try BuiltTool.run(arguments, in: folder) }

    /// A real-tissue slide: the CMU sample's level 0 rewritten as a pyramidal TIFF (0.499 µm/px).
    func makeSlide() throws {
        let sample = Self.repository.appendingPathComponent("data/samples/cmu_small_region.svs").path
        guard FileManager.default.fileExists(atPath: sample) else { throw XCTSkip("run `make samples` (make test does it)") }
        let made = try run(["region", sample, "--x", "0", "--y", "0", "--width", "2220", "--height", "2967", "--level", "0",
                            "--out", folder.appendingPathComponent("slides/cmu.tif").path])
        XCTAssertEqual(made.status, 0, made.output)
    }

    func writeFlow(method: String = "vahadane") throws -> String {
        let target = Self.repository.appendingPathComponent("Tests/TilingTests/Fixtures/stain/target.png").path
        let text = """
            flow: crash
            output: run
            source:
              kind: slides
              path: slides
              pattern: "*.tif"
            stages:
              - stage: tissue
              - stage: tiles
                mpp: 0.5
                size: 64
                scales: [0.5, 1.0]
                min_tissue: 0.5
              - stage: stain
                method: \(method)
                target: \(target)
              - stage: cache
                path: cache
                batch: 4
            """
        let path = folder.appendingPathComponent("flow.yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The run folder says how it was made, and a second run into it is refused unless asked to
    /// replace (`--overwrite`) or continue (`--resume`) it.
    func testRunFolderKeepsTheResolvedFlowAndARerunAsksBeforeReplacingIt() throws {
        try makeSlide()
        let flow = try writeFlow(method: "reinhard")
        let first = try run(["run", flow, "--set", "tiles.min_tissue=0.6"])
        XCTAssertEqual(first.status, 0, first.output)
        let runFolder = folder.appendingPathComponent("run")
        let provenance = try JSONSerialization.jsonObject(with: Data(contentsOf: runFolder.appendingPathComponent("run.json"))) as! [String: Any]
        XCTAssertEqual(provenance["tool_version"] as? String, "0.1.0")
        XCTAssertEqual((provenance["command_line"] as? [String])?.suffix(4), ["run", flow, "--set", "tiles.min_tissue=0.6"])
        XCTAssertEqual(provenance["resumed"] as? Bool, false)
        let resolved = try String(contentsOf: runFolder.appendingPathComponent("flow.resolved.yaml"), encoding: .utf8)
        XCTAssertTrue(resolved.contains("min_tissue: 0.6"), resolved)
        XCTAssertTrue(resolved.contains("mask_mpp: 8"), "defaults are written out: \(resolved)")

        // The resolved flow repeats the run: the same tiles, all from the cache now.
        let again = try run(["run", runFolder.appendingPathComponent("flow.resolved.yaml").path, "--out", folder.appendingPathComponent("again").path])
        XCTAssertEqual(again.status, 0, again.output)
        let counters = { (folder: URL) throws -> [String: Int] in
            let report = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("report.json"))) as! [String: Any]
            return report["counters"] as! [String: Int]
        }
        let (before, after) = (try counters(runFolder), try counters(folder.appendingPathComponent("again")))
        XCTAssertEqual(after["tiles.positions"], before["tiles.positions"])
        XCTAssertEqual(after["cache.hits"], before["cache.misses"])

        // A rerun into the folder is refused, and the earlier run is left as it was.
        let report = try Data(contentsOf: runFolder.appendingPathComponent("report.json"))
        let refused = try run(["run", flow])
        XCTAssertEqual(refused.status, 1, refused.output)
        XCTAssertTrue(refused.output.contains("\(runFolder.path): holds an earlier run (report.json); pass --overwrite to replace it, --resume to continue it, or --out"), refused.output)
        XCTAssertFalse(refused.output.contains("Usage:"), refused.output)
        XCTAssertEqual(try Data(contentsOf: runFolder.appendingPathComponent("report.json")), report)

        // --overwrite empties the folder first: nothing of the earlier run stays behind, but a tile
        // cache kept in the run folder is not part of the run and stays.
        try Data("stale".utf8).write(to: runFolder.appendingPathComponent("stale.txt"))
        try FileManager.default.copyItem(at: folder.appendingPathComponent("cache"), to: runFolder.appendingPathComponent("kept-cache"))
        let replaced = try run(["run", flow, "--overwrite"])
        XCTAssertEqual(replaced.status, 0, replaced.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: runFolder.appendingPathComponent("stale.txt").path))
        XCTAssertTrue(FileManager.default.fileExists(atPath: runFolder.appendingPathComponent("kept-cache/data.mdb").path))
        XCTAssertTrue(FileManager.default.fileExists(atPath: runFolder.appendingPathComponent("report.md").path))
        XCTAssertFalse((try String(contentsOf: runFolder.appendingPathComponent("flow.resolved.yaml"), encoding: .utf8)).contains("min_tissue: 0.6"))
    }

    func records() throws -> Int {
        let stats = try run(["cache", "stats", folder.appendingPathComponent("cache").path, "--json"])
        guard stats.status == 0, let object = try? JSONSerialization.jsonObject(with: Data(stats.output.utf8)) as? [String: Any] else { return 0 }
        return object["records"] as? Int ?? 0
    }

    func report() throws -> [String: Any] {
        let data = try Data(contentsOf: folder.appendingPathComponent("run/warm/report.json"))
        return try JSONSerialization.jsonObject(with: data) as! [String: Any]
    }

    func testKillDuringWarmUpThenRerun() throws {
        try makeSlide()
        let flow = try writeFlow()
        let child = process(["cache", "warm", flow])
        try child.run()
        var seen = 0
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline && child.isRunning {
            usleep(50_000)
            seen = try records()
            if seen >= 40 { break }
        }
        kill(child.processIdentifier, SIGKILL)
        child.waitUntilExit()
        XCTAssertEqual(child.terminationReason, .uncaughtSignal, "the warm-up finished before it could be killed (\(seen) records)")

        let verify = try run(["cache", "verify", folder.appendingPathComponent("cache").path])
        XCTAssertEqual(verify.status, 0, "corrupt records after SIGKILL: \(verify.output)")
        let survived = try records()
        XCTAssertEqual(survived % 4, 0, "only whole batches of 4 survive")

        let rerun = try run(["cache", "warm", flow])
        XCTAssertEqual(rerun.status, 0, rerun.output)
        let counters = try report()["counters"] as! [String: Int]
        let expected = 2 * (counters["tiles.positions"] ?? 0)
        XCTAssertEqual(counters["cache.hits"] ?? 0, survived, "everything that survived is reused")
        XCTAssertEqual(counters["cache.written"] ?? 0, expected - survived, "everything missing is written once")
        XCTAssertEqual(try records(), expected, "every expected tile is present exactly once")
        XCTAssertEqual(try run(["cache", "verify", folder.appendingPathComponent("cache").path]).status, 0)
        print("warm-up crash test: killed with \(survived) of \(expected) tiles cached; rerun completed without corruption")
    }

    func testInterruptStopsCleanlyAndWritesTheReport() throws {
        try stopCleanly(with: SIGINT, status: 130, reason: "interrupted (Ctrl-C)")
    }

    /// SIGTERM (Slurm's and `docker stop`'s) stops like Ctrl-C: report written, caches flushed, 143.
    func testTerminationStopsCleanlyAndWritesTheReport() throws {
        try stopCleanly(with: SIGTERM, status: 143, reason: "terminated (SIGTERM)")
    }

    func stopCleanly(with signalNumber: Int32, status: Int32, reason: String) throws {
        try makeSlide()
        let flow = try writeFlow()
        let child = process(["cache", "warm", flow])
        try child.run()
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline && child.isRunning {
            usleep(50_000)
            if try records() >= 8 { break }
        }
        kill(child.processIdentifier, signalNumber)
        child.waitUntilExit()
        XCTAssertEqual(child.terminationStatus, status)
        let report = try report()
        XCTAssertEqual(report["status"] as? String, "cancelled")
        XCTAssertEqual(report["stop_reason"] as? String, reason)
        // The cache writer flushed: everything the cache stage took in is in the cache.
        let stages = report["stages"] as! [[String: Any]]
        let cacheIn = stages.first { $0["name"] as? String == "cache" }?["items_in"] as? Int ?? -1
        XCTAssertEqual(try records(), cacheIn)
        XCTAssertEqual(try run(["cache", "verify", folder.appendingPathComponent("cache").path]).status, 0)
    }

    /// A cache that cannot grow (the file-size limit stands in for a full disk): the first failed
    /// write stops the run (every later one would fail too) with advice, the report is written,
    /// the exit status is 1 and the last line says so; what was written is intact.
    func testFullDiskFailsTheRunWithItsReport() throws {
        try makeSlide()
        let flow = try writeFlow(method: "reinhard")
        let shell = Process()
        shell.executableURL = URL(fileURLWithPath: "/bin/sh")
        shell.arguments = ["-c", "ulimit -f 1024; exec \"$0\" cache warm \"$1\"", executable.path, flow]
        shell.currentDirectoryURL = folder
        let pipe = Pipe()
        shell.standardOutput = pipe
        shell.standardError = FileHandle.nullDevice
        try shell.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        shell.waitUntilExit()
        XCTAssertEqual(shell.terminationReason, .exit, "the process must not die of SIGXFSZ")
        XCTAssertEqual(shell.terminationStatus, 1, output)
        let last = output.split(separator: "\n").last.map(String.init) ?? ""
        XCTAssertTrue(last.hasPrefix("failed: stage 'cache' cannot go on"), last)
        let report = try report()
        XCTAssertEqual(report["status"] as? String, "failed")
        let stages = report["stages"] as! [[String: Any]]
        let cache = try XCTUnwrap(stages.first { $0["name"] as? String == "cache" })
        XCTAssertGreaterThan(cache["failed"] as? Int ?? 0, 0, "the full disk must show as failures")
        XCTAssertLessThanOrEqual(cache["failed"] as? Int ?? 0, 4, "the run stops at the first failed write, not one failure per batch")
        let reasons = (cache["failures"] as? [[String: Any]] ?? []).compactMap { $0["reason"] as? String }
        XCTAssertTrue(reasons.first?.contains("free disk space") ?? false, "\(reasons.first ?? "no reason")")
        XCTAssertEqual(try run(["cache", "verify", folder.appendingPathComponent("cache").path]).status, 0)
    }

    /// A run none of whose slides could be read did nothing: exit 1, and the last line and the
    /// report say which stage failed every item; one bad slide among good ones is a completed
    /// run whose last line counts the failure.
    func testARunWhoseItemsAllFailedExitsNonZero() throws {
        try Data("not a slide".utf8).write(to: folder.appendingPathComponent("slides/broken.tif"))
        let flow = try writeFlow(method: "reinhard")
        let failed = try run(["run", flow])
        XCTAssertEqual(failed.status, 1, failed.output)
        let last = failed.output.split(separator: "\n").last.map(String.init) ?? ""
        XCTAssertTrue(last.hasPrefix("failed: every item of stage"), last)
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("run/report.json"))) as! [String: Any]
        XCTAssertEqual(report["status"] as? String, "failed")

        try makeSlide()
        let partial = try run(["run", flow, "--out", "partial"])
        XCTAssertEqual(partial.status, 0, partial.output)
        let partialLast = partial.output.split(separator: "\n").last.map(String.init) ?? ""
        XCTAssertTrue(partialLast.hasPrefix("completed with 1 failed item(s)"), partialLast)
    }

    /// Two runs in one run folder (two `cache warm`s of one flow): the second stops at once,
    /// naming the process holding the folder, and the first one's report is not overwritten.
    func testASecondRunInTheSameFolderIsRefused() throws {
        try makeSlide()
        let flow = try writeFlow(method: "reinhard")
        let runFolder = folder.appendingPathComponent("run/warm")
        try FileManager.default.createDirectory(at: runFolder, withIntermediateDirectories: true)
        // The first run, as another process holds it: an flock on the folder's lock file.
        let holder = open(runFolder.appendingPathComponent(".run.lock").path, O_CREAT | O_RDWR, 0o644)
        XCTAssertGreaterThanOrEqual(holder, 0)
        XCTAssertEqual(flock(holder, LOCK_EX), 0)
        _ = "4242\n".withCString { write(holder, $0, 5) }
        let second = try run(["cache", "warm", flow])
        XCTAssertEqual(second.status, 1, second.output)
        XCTAssertTrue(second.output.contains("is in use by another run (process 4242)"), second.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: runFolder.appendingPathComponent("report.json").path))
        close(holder)
        let after = try run(["cache", "warm", flow])
        XCTAssertEqual(after.status, 0, after.output)
        // Shards of a Slurm array write their own reports.
        let shard = try run(["cache", "warm", flow, "--shard", "0/2"])
        XCTAssertEqual(shard.status, 0, shard.output)
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder.appendingPathComponent("run/warm-shard-0-of-2/report.json").path))
    }

    /// `flow check` knows what `run` would fail on: no slides matching, a cache path that is a
    /// file, a run folder that cannot be created; `run` stops before creating its folder.
    func testFlowCheckFindsWhatWouldStopTheRun() throws {
        try Data("x".utf8).write(to: folder.appendingPathComponent("a-file"))
        let text = """
            flow: nothing-to-do
            output: a-file/run
            source:
              kind: slides
              path: slides
              pattern: "*.svs"
            stages:
              - stage: tissue
              - stage: tiles
                mpp: 1
                size: 64
              - stage: cache
                path: a-file

            """
        let path = folder.appendingPathComponent("cannot.yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let check = try run(["flow", "check", path])
        XCTAssertEqual(check.status, 1, check.output)
        XCTAssertTrue(check.output.contains("cannot.yaml:4:3: 'source' (slides): no slides found"), check.output)
        XCTAssertTrue(check.output.contains("cannot.yaml:12:5: 'cache' (cache): the cache folder a-file is a file"), check.output)
        XCTAssertTrue(check.output.contains("the run folder a-file/run cannot be created"), check.output)
        let started = try run(["run", path, "--out", "never"])
        XCTAssertEqual(started.status, 1, started.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder.appendingPathComponent("never").path), "no empty run folder")
    }

    func testFlowCheckReportsLineAndColumn() throws {
        let path = folder.appendingPathComponent("bad.yaml").path
        try "flow: x\nsource:\n  kind: slides\n  path: slides\nstages:\n  - stage: tiles\n    mpp: fine\n    sise: 224\n".write(toFile: path, atomically: true, encoding: .utf8)
        let result = try run(["flow", "check", path])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.output.contains("bad.yaml:7:10: 'mpp' must be a number"), result.output)
        XCTAssertTrue(result.output.contains("bad.yaml:8:5: unknown key 'sise' in stage 'tiles' (did you mean 'size'?)"), result.output)
    }
}
