import Foundation
import SSMamba
import Slides
import Tensors
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
            XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/evaluate_slides/\(name).heatmap.png"))
        }
        let unknown = try BuiltTool.run(["eval", "--checkpoint", folder.appendingPathComponent("model").path, "--slides", folder.appendingPathComponent("slides").path,
                                         "--pattern", "*.tif", "--heatmap-class", "lymph", "--out", out])
        XCTAssertEqual(unknown.status, 1)
        XCTAssertTrue(unknown.output.contains("--heatmap-class 'lymph' is not one of the checkpoint's classes: benign, tumour"), unknown.output)
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
        for file in ["slide_scores.csv", "a.tiles.csv", "b.tiles.csv", "a.heatmap.png", "b.heatmap.tif"] {
            let one = try Data(contentsOf: folder.appendingPathComponent("single/evaluate_slides/\(file)"))
            let two = try Data(contentsOf: folder.appendingPathComponent("parallel/evaluate_slides/\(file)"))
            XCTAssertEqual(one, two, file)
        }
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("parallel/report.json"))) as! [String: Any]
        XCTAssertEqual((report["counters"] as? [String: Int])?["evaluate_slides.slides"], 2)
        XCTAssertEqual((report["counters"] as? [String: Int])?["evaluate_slides.processes"], 2)
    }
}
