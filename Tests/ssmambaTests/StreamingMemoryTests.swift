import Foundation
import SSMamba
import Slides
import Tensors
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
                  - stage: evaluate_slides
                    checkpoint: \(folder.appendingPathComponent("model").path)
                    mpp: 4.0
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
            peaks[side] = report["peakResidentMegabytes"] as? Double ?? .infinity
        }
        let growth = peaks[16384]! - peaks[4096]!
        print(String(format: "streaming evaluation peak memory: %.0f MB (4096²) → %.0f MB (16384²); level 0 grew by 720 MB", peaks[4096]!, peaks[16384]!))
        XCTAssertLessThan(growth, 100, "peak memory grew by \(growth) MB for a slide 16× larger")
    }
}
