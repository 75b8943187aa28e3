import Foundation
import Slides
import XCTest

/// Data-parallel fine-tuning under a real `mpirun`: two processes sharing every batch of 16 (8
/// each) train exactly as one process with the whole batch (same images, gradients averaged
/// before each step), rank 0 alone writes the run.
final class DataParallelTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("parallel-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { if ProcessInfo.processInfo.environment["KEEP"] == nil { try? FileManager.default.removeItem(at: folder) } }

    /// Two colour classes of 64² images with noise, 160 each.
    func writeROIs() throws -> URL {
        let dataset = folder.appendingPathComponent("rois")
        for (label, base) in [("pink", (230, 140, 190)), ("purple", (110, 60, 160))] {
            let classFolder = dataset.appendingPathComponent(label)
            try FileManager.default.createDirectory(at: classFolder, withIntermediateDirectories: true)
            for i in 0..<160 {
                var pixels = [UInt8](repeating: 0, count: 64 * 64 * 3)
                for p in 0..<(64 * 64) {
                    let noise = Int((p &* 2654435761 &+ i &* 97) % 41) - 20
                    pixels[3 * p] = UInt8(base.0 + noise); pixels[3 * p + 1] = UInt8(base.1 + noise); pixels[3 * p + 2] = UInt8(base.2 + noise)
                }
                try PNGWriter.write(RGBImage(width: 64, height: 64, pixels: pixels), to: classFolder.appendingPathComponent("\(label)-\(i).png"))
            }
        }
        return dataset
    }

    func losses(_ run: URL) throws -> [Double] {
        try String(contentsOf: run.appendingPathComponent("finetune/train_log.csv"), encoding: .utf8)
            .split(separator: "\n").dropFirst().map { Double($0.split(separator: ",")[1])! }
    }

    func testTwoProcessesTrainAsOneWithTheWholeBatch() throws {
        let rois = try writeROIs()
        let flow = folder.appendingPathComponent("finetune.yaml")
        // Augmentation on (flips, brightness): each image draws from its own place in the batch, so
        // both runs see the same images; no drop-path or dropout (those draw per process).
        try """
        flow: parallel
        output: \(folder.appendingPathComponent("run").path)
        source: {kind: roi_folder, path: \(rois.path)}
        stages:
          - stage: decode
          - stage: cache
            path: \(folder.appendingPathComponent("cache").path)
          - stage: finetune
            model: {name: ssmamba_micro, drop_path: 0, head_dropout: 0}
            epochs: 2
            batch: 16
            balanced: false

        """.write(to: flow, atomically: true, encoding: .utf8)
        let single = try BuiltTool.run(["run", flow.path, "--out", folder.appendingPathComponent("single").path])
        XCTAssertEqual(single.status, 0, single.output)

        let mpirun = Process()
        mpirun.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        mpirun.arguments = ["mpirun", "--oversubscribe", "-np", "2", BuiltTool.executable.path, "run", flow.path,
                            "--out", folder.appendingPathComponent("parallel").path]
        mpirun.environment = ProcessInfo.processInfo.environment.merging(["OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"]) { $1 }
        let pipe = Pipe()
        mpirun.standardOutput = pipe
        mpirun.standardError = pipe
        try mpirun.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        mpirun.waitUntilExit()
        XCTAssertEqual(mpirun.terminationStatus, 0, output)

        let one = try losses(folder.appendingPathComponent("single")), two = try losses(folder.appendingPathComponent("parallel"))
        XCTAssertEqual(one.count, two.count)
        XCTAssertGreaterThanOrEqual(one.count, 20)
        for (step, (a, b)) in zip(one, two).enumerated().prefix(20) {
            XCTAssertEqual(b, a, accuracy: 1e-5 * abs(a), "step \(step): one process \(a), two processes \(b)")
        }
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("parallel/report.json"))) as! [String: Any]
        XCTAssertEqual((report["counters"] as? [String: Int])?["finetune.processes"], 2)
        // The per-rank figures: each rank read half of the images one process read.
        let singleReport = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("single/report.json"))) as! [String: Any]
        let read = try XCTUnwrap((singleReport["counters"] as? [String: Int])?["finetune.tiles_read"])
        let metrics = try XCTUnwrap(report["metrics"] as? [String: Double])
        XCTAssertEqual(metrics["finetune.rank0.images"], Double(read / 2), "\(metrics)")
        XCTAssertEqual(metrics["finetune.rank1.images"], Double(read / 2), "\(metrics)")
        XCTAssertNotNil(metrics["finetune.rank1.averaging_gradients_seconds"])
        XCTAssertEqual(output.split(separator: "\n").filter { $0.hasPrefix("completed") }.count, 1, "rank 0 alone says how the run ended\n\(output)")
    }
}
