import Foundation
import SSMamba
import Slides
import Tensors
import TileCache
import XCTest

/// Streaming evaluation keeps memory flat in the slide's size: the same flow on a 4096² and a
/// 16384² synthetic slide (16× the pixels: 48 MB and 768 MB decoded at level 0) differs in peak
/// resident memory by far less than the larger slide's decoded size.
final class StreamingMemoryTests: XCTestCase {

    func testPeakMemoryIsFlatInSlideSize() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("memory-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        // A random-weight classifier: memory, not accuracy, is under test.
        try writeRandomClassifier(classes: ["a", "b"], to: folder.appendingPathComponent("model"), seed: 0)

        // Glass, with a disk of tissue (uniform tiles, so writing 16384² stays quick).
        let glass = RGBImage(width: 256, height: 256, filling: (242, 241, 243)), tissue = RGBImage(width: 256, height: 256, filling: (200, 120, 180))
        var peaks: [Int: Double] = [:]
        for side in [4096, 16384] {
            let slides = folder.appendingPathComponent("slides-\(side)")
            try FileManager.default.createDirectory(at: slides, withIntermediateDirectories: true)
            try PyramidWriter.write(width: side, height: side, to: slides.appendingPathComponent("big.tif"), micronsPerPixel: 0.5) { level, x, y, w, h in
                let scale = Double(1 << level), centre = Double(side) / 2
                let dx = (Double(x) + 128) * scale - centre, dy = (Double(y) + 128) * scale - centre
                let inside = dx * dx + dy * dy < (centre * 0.7) * (centre * 0.7)
                let source = inside ? tissue : glass
                return w == 256 && h == 256 ? source : RGBImage(width: w, height: h, filling: (source.pixels[0], source.pixels[1], source.pixels[2]))
            }
            let flow = """
                flow: memory
                output: \(folder.appendingPathComponent("run-\(side)").path)
                source: {kind: slides, path: \(slides.path), pattern: "*.tif"}
                stages:
                  - stage: tissue
                  - stage: tiles
                    mpp: 4.0
                    size: 64
                  - stage: cache
                    path: \(folder.appendingPathComponent("cache-\(side)").path)
                  - stage: evaluate_slides
                    checkpoint: \(folder.appendingPathComponent("model").path)
                """
            let path = folder.appendingPathComponent("flow-\(side).yaml").path
            try flow.write(toFile: path, atomically: true, encoding: .utf8)
            let process = BuiltTool.process(["run", path])
            try process.run()
            process.waitUntilExit()
            XCTAssertEqual(process.terminationStatus, 0)
            let report = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("run-\(side)/report.json"))) as! [String: Any]
            let counters = report["counters"] as! [String: Int]
            XCTAssertGreaterThan(counters["evaluate_slides.tiles"] ?? 0, side == 4096 ? 10 : 200)
            peaks[side] = report["peak_resident_megabytes"] as? Double ?? .infinity
        }
        let growth = peaks[16384]! - peaks[4096]!
        print(String(format: "streaming evaluation peak memory: %.0f MB (4096²) → %.0f MB (16384²); level 0 grew by 720 MB", peaks[4096]!, peaks[16384]!))
        XCTAssertLessThan(growth, 100, "peak memory grew by \(growth) MB for a slide 16× larger")
    }

    /// Training streams from the cache: pretraining on 100,000 cached 64² tiles holds no more
    /// memory than on 10,000 (within 10 %), and reads every tile it was given.
    func testTrainingMemoryIsFlatInDataSetSize() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("training-memory-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        var peaks: [Int: Double] = [:]
        for count in [10_000, 100_000] {
            // Tiles of one colour each (they compress to a few bytes, so the map stays small and the
            // test measures the process's memory, not the page cache of a large data file).
            let cache = folder.appendingPathComponent("cache-\(count)")
            let store = try TileStore(path: cache.path)
            for chunk in stride(from: 0, to: count, by: 5_000) {
                try store.write((chunk..<min(count, chunk + 5_000)).map { i in
                    let key = TileKey(source: UInt64(i % 97), parameters: 1, x: i, y: 0, micronsPerPixel: 0.5)
                    let pixels = RGBImage(width: 64, height: 64, filling: (UInt8(150 + i % 100), UInt8(60 + i % 80), UInt8(140 + i % 90))).pixels
                    return (key, CachedTile(channels: 3, height: 64, width: 64, pixels: pixels, level0Origin: (i, 0),
                                            requestedMicronsPerPixel: 0.5, effectiveMicronsPerPixel: 0.5, source: UInt64(i % 97), parameters: 1))
                })
            }
            // Each size runs twice and keeps its lower peak: one run's peak moves by ±5 MB with the
            // readers' and workers' timing (seen: 121–130 MB for the same 10,000 tiles).
            for attempt in 0..<2 {
                let run = folder.appendingPathComponent("run-\(count)-\(attempt)")
                let flow = folder.appendingPathComponent("flow-\(count).yaml").path
                try """
                flow: training-memory
                output: \(run.path)
                source: {kind: cached_tiles, path: \(cache.path)}
                stages:
                  - stage: pretrain
                    steps: 30
                    batch: 32
                    reconstructions: 0
                """.write(toFile: flow, atomically: true, encoding: .utf8)
                let result = try BuiltTool.run(["run", flow])
                XCTAssertEqual(result.status, 0, result.output)
                let report = try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("report.json"))) as! [String: Any]
                let counters = report["counters"] as! [String: Int]
                XCTAssertEqual(counters["pretrain.tiles"], count, "no tile left out")
                XCTAssertEqual(counters["pretrain.tiles_read"], 30 * 32)
                XCTAssertEqual((report["failures"] as? [Any])?.count ?? 0, 0)
                peaks[count] = min(peaks[count] ?? .infinity, report["peak_resident_megabytes"] as? Double ?? .infinity)
            }
        }
        print(String(format: "pretraining peak memory: %.0f MB (10,000 cached tiles) → %.0f MB (100,000)", peaks[10_000]!, peaks[100_000]!))
        XCTAssertLessThan(peaks[100_000]!, peaks[10_000]! * 1.10, "peak memory grew by more than 10 % for 10× the tiles")
    }
}
