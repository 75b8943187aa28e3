import Foundation
import Slides
import XCTest

/// `ssmamba run FLOW --resume` after SIGKILL: the real binary is killed in the middle of
/// pretraining, resumed, killed again in the middle of fine-tuning, resumed again, and every
/// training step's loss, the chosen model and the test metrics equal an uninterrupted run's.
final class ResumeTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("resume-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    func writeFlow() throws -> String {
        let dataset = folder.appendingPathComponent("rois")
        for (label, base) in [("pink", (230, 140, 190)), ("purple", (150, 90, 170))] {
            let classFolder = dataset.appendingPathComponent(label)
            try FileManager.default.createDirectory(at: classFolder, withIntermediateDirectories: true)
            for i in 0..<16 {
                var pixels = [UInt8](repeating: 0, count: 64 * 64 * 3)
                for p in 0..<(64 * 64) {
                    let noise = Int((p &* 2654435761 &+ i &* 97) % 41) - 20
                    pixels[3 * p] = UInt8(base.0 + noise); pixels[3 * p + 1] = UInt8(base.1 + noise); pixels[3 * p + 2] = UInt8(base.2 + noise)
                }
                try PNGWriter.write(RGBImage(width: 64, height: 64, pixels: pixels), to: classFolder.appendingPathComponent("\(label)-\(i).png"))
            }
        }
        let path = folder.appendingPathComponent("flow.yaml").path
        try """
        flow: resume
        source: {kind: roi_folder, path: \(dataset.path)}
        stages:
          - stage: decode
          - stage: cache
            path: \(folder.appendingPathComponent("cache").path)
          - stage: pretrain
            steps: 240
            batch: 8
            checkpoint_every: 7
            reconstructions: 0
          - stage: finetune
            from: cache
            init: pretrain
            epochs: 40
            batch: 4
            checkpoint_every: 3
            validation_fraction: 0.25
            test_fraction: 0.25
        """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func rows(_ url: URL) -> Int {
        ((try? String(contentsOf: url, encoding: .utf8))?.split(separator: "\n").count ?? 1) - 1
    }

    /// Starts a run and kills it with SIGKILL once `log` has at least `rows` rows.
    func killMidway(_ arguments: [String], log: URL, rows wanted: Int) throws {
        let process = BuiltTool.process(arguments)
        try process.run()
        let deadline = Date().addingTimeInterval(300)
        while process.isRunning && rows(log) < wanted && Date() < deadline { usleep(500) }
        XCTAssertTrue(process.isRunning, "the run ended before it could be killed (\(rows(log)) rows in \(log.lastPathComponent))")
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationReason, .uncaughtSignal)
    }

    func testKilledRunsResumeToTheSameLossesAndModel() throws {
        let flow = try writeFlow()
        let straight = folder.appendingPathComponent("straight"), killed = folder.appendingPathComponent("killed")
        let whole = try BuiltTool.run(["run", flow, "--out", straight.path])
        XCTAssertEqual(whole.status, 0, whole.output)

        let pretrainLog = killed.appendingPathComponent("pretrain/train_log.csv"), finetuneLog = killed.appendingPathComponent("finetune/train_log.csv")
        try killMidway(["run", flow, "--out", killed.path], log: pretrainLog, rows: 60)
        let pretrainRowsAtKill = rows(pretrainLog)
        XCTAssertLessThan(pretrainRowsAtKill, 240)
        try killMidway(["run", flow, "--out", killed.path, "--resume"], log: finetuneLog, rows: 50)
        XCTAssertLessThan(rows(finetuneLog), 40 * 4)
        let resumed = try BuiltTool.run(["run", flow, "--out", killed.path, "--resume"])
        XCTAssertEqual(resumed.status, 0, resumed.output)

        for file in ["pretrain/train_log.csv", "finetune/train_log.csv", "finetune/metrics.json", "finetune/best/model.safetensors",
                     "pretrain/checkpoint/model.safetensors", "pretrain/loss.svg", "finetune/loss.svg", "finetune/validation.svg",
                     "finetune/roc.svg", "finetune/confusion.svg"] {
            let a = try Data(contentsOf: straight.appendingPathComponent(file)), b = try Data(contentsOf: killed.appendingPathComponent(file))
            XCTAssertEqual(a, b, "\(file) differs after SIGKILL and --resume")
        }
        XCTAssertEqual(rows(pretrainLog), 240)
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: killed.appendingPathComponent("report.json"))) as! [String: Any]
        let counters = report["counters"] as! [String: Int]
        XCTAssertGreaterThan(counters["finetune.resumed_at_step"] ?? 0, 0, "the last run continued fine-tuning, not restarted it")
        XCTAssertEqual(counters["pretrain.resumed_at_step"], 240, "pretraining had ended in the second run")
    }

    func testResumingWithOtherParametersIsRefused() throws {
        let flow = try writeFlow()
        let out = folder.appendingPathComponent("run")
        try killMidway(["run", flow, "--out", out.path], log: out.appendingPathComponent("pretrain/train_log.csv"), rows: 20)
        let changed = try BuiltTool.run(["run", flow, "--out", out.path, "--resume", "--set", "pretrain.lr=0.002"])
        XCTAssertNotEqual(changed.status, 0)
        XCTAssertTrue(changed.output.contains("pretrain/last"), changed.output)
        XCTAssertTrue(changed.output.contains("without --resume"), changed.output)
    }
}
