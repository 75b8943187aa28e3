import Foundation
import Tensors
import TileCache
import XCTest

/// Kill a writing process with SIGKILL mid-run, then rerun: no corrupt record, every tile
/// present exactly once. The writer is this test bundle itself, started as a child process and
/// filtered to `testChildWriter`.
final class CrashSafetyTests: XCTestCase {
    static let total = 400
    static let batch = 8
    static let childVariable = "SSMAMBA_CRASH_CHILD_CACHE"

    static func writeAll(to path: String, pauseMicroseconds: UInt32) throws {
        let store = try TileStore(path: path)
        for start in stride(from: 0, to: total, by: batch) {
            try store.write((start..<min(start + batch, total)).map { syntheticTile($0, side: 96) })
            if pauseMicroseconds > 0 { usleep(pauseMicroseconds) }
        }
    }

    /// The child half: writes slowly until the parent kills it.
    func testChildWriter() throws {
        guard let path = ProcessInfo.processInfo.environment[Self.childVariable] else {
            throw XCTSkip("runs only as the child process of testKillDuringWritesThenRerun")
        }
        try Self.writeAll(to: path, pauseMicroseconds: 20_000)
    }

    func testKillDuringWritesThenRerun() throws {
        let directory = try temporaryDirectory("crash")
        defer { try? FileManager.default.removeItem(at: directory) }
        let child = Process()
        child.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
        child.arguments = ["TileCacheTests.CrashSafetyTests/testChildWriter"]
        child.environment = ProcessInfo.processInfo.environment.merging([Self.childVariable: directory.path]) { $1 }
        child.standardOutput = FileHandle.nullDevice
        child.standardError = FileHandle.nullDevice
        try child.run()
        // Wait until the child has committed some batches, then kill it without warning.
        let deadline = Date().addingTimeInterval(60)
        var seen = 0
        while Date() < deadline {
            usleep(20_000)
            if let store = try? TileStore(path: directory.path, readOnly: true), let stats = try? store.statistics() { seen = stats.records }
            if seen >= 10 * Self.batch { break }
        }
        kill(child.processIdentifier, SIGKILL)
        child.waitUntilExit()
        XCTAssertEqual(child.terminationReason, .uncaughtSignal, "the child must have been killed mid-run")
        XCTAssertGreaterThanOrEqual(seen, 10 * Self.batch, "the child wrote too little before the deadline")

        let afterKill = try TileStore(path: directory.path)
        XCTAssertEqual(try afterKill.verify().count, 0, "no corrupt record after SIGKILL")
        let survived = try afterKill.statistics().records
        XCTAssertLessThan(survived, Self.total, "the kill came after the child finished")
        XCTAssertEqual(survived % Self.batch, 0, "only whole committed batches survive")

        try Self.writeAll(to: directory.path, pauseMicroseconds: 0)  // the rerun: skip-if-present
        let final = try TileStore(path: directory.path)
        XCTAssertEqual(try final.statistics().records, Self.total, "every tile exactly once")
        XCTAssertEqual(try final.verify().count, 0)
        for i in stride(from: 0, to: Self.total, by: 37) {
            let (key, tile) = syntheticTile(i, side: 96)
            XCTAssertEqual(try final.read(key), tile, "tile \(i)")
        }
        print("crash test: killed after \(survived) of \(Self.total) tiles; rerun completed with \(Self.total), no corruption")
    }
}
