import Foundation
import Randomness
import Slides
import SSMamba
import Tensors
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

    func losses(_ run: URL, stage: String = "finetune") throws -> [Double] {
        try String(contentsOf: run.appendingPathComponent("\(stage)/train_log.csv"), encoding: .utf8)
            .split(separator: "\n").dropFirst().map { Double($0.split(separator: ",")[1])! }
    }

    func mpirun(_ ranks: Int, _ arguments: [String]) throws -> (status: Int32, output: String) { try BuiltTool.mpirun(ranks, arguments) }

    /// The fine-tuning flow of both tests: augmentation (flips, brightness), drop-path and head
    /// dropout on; every random choice about an image draws from its place in the whole batch, so
    /// one process and two make the same choices.
    func writeFlow(epochs: Int, checkpointEvery: Int = 100) throws -> URL {
        let rois = folder.appendingPathComponent("rois")
        if !FileManager.default.fileExists(atPath: rois.path) { _ = try writeROIs() }
        let flow = folder.appendingPathComponent("finetune.yaml")
        try """
        flow: parallel
        output: \(folder.appendingPathComponent("run").path)
        source: {kind: roi_folder, path: \(rois.path)}
        stages:
          - stage: decode
          - stage: cache
            path: \(folder.appendingPathComponent("cache").path)
          - stage: finetune
            model: {name: ssmamba_micro, drop_path: 0.1, head_dropout: 0.2}
            epochs: \(epochs)
            batch: 16
            balanced: false
            checkpoint_every: \(checkpointEvery)

        """.write(to: flow, atomically: true, encoding: .utf8)
        return flow
    }

    func testTwoProcessesTrainAsOneWithTheWholeBatch() throws {
        let flow = try writeFlow(epochs: 2)
        let single = try BuiltTool.run(["run", flow.path, "--out", folder.appendingPathComponent("single").path])
        XCTAssertEqual(single.status, 0, single.output)
        let (status, output) = try mpirun(2, ["run", flow.path, "--out", folder.appendingPathComponent("parallel").path])
        XCTAssertEqual(status, 0, output)
        try compare()
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("parallel/report.json"))) as! [String: Any]
        XCTAssertEqual((report["counters"] as? [String: Int])?["finetune.processes"], 2)
        // The per-rank figures: each rank read half of the images one process read.
        let singleReport = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("single/report.json"))) as! [String: Any]
        let read = try XCTUnwrap((singleReport["counters"] as? [String: Int])?["finetune.tiles_read"])
        let metrics = try XCTUnwrap(report["metrics"] as? [String: Double])
        XCTAssertEqual(metrics["finetune.rank0.images"], Double(read / 2), "\(metrics)")
        XCTAssertEqual(metrics["finetune.rank1.images"], Double(read / 2), "\(metrics)")
        XCTAssertNotNil(metrics["finetune.rank1.averaging_gradients_seconds"])
        let markdown = try String(contentsOf: folder.appendingPathComponent("parallel/report.md"), encoding: .utf8)
        XCTAssertTrue(markdown.contains("## Processes\n\n| stage | rank | averaging_gradients_seconds | images | waited_for_data_seconds |"), markdown)
        XCTAssertTrue(markdown.contains("| finetune | 1 | "), markdown)
        XCTAssertEqual(output.split(separator: "\n").filter { $0.hasPrefix("completed") }.count, 1, "rank 0 alone says how the run ended\n\(output)")
    }

    /// A pretraining flow on the ROIs of `writeROIs`: `settings` are the pretrain step's lines.
    func writePretrainFlow(_ name: String, settings: String) throws -> URL {
        let url = folder.appendingPathComponent("\(name).yaml")
        try """
        flow: pretrain
        output: \(folder.appendingPathComponent("run").path)
        source: {kind: roi_folder, path: \(folder.appendingPathComponent("rois").path)}
        stages:
          - stage: decode
          - stage: cache
            path: \(folder.appendingPathComponent("cache").path)
          - stage: pretrain
        \(settings)

        """.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    /// The pretraining losses of runs `single` and `parallel`: `steps` of them, step by step
    /// within `tolerance` (relative).
    func assertSamePretrainingLosses(steps: Int, tolerance: Double, _ label: String) throws {
        let one = try losses(folder.appendingPathComponent("single"), stage: "pretrain")
        let other = try losses(folder.appendingPathComponent("parallel"), stage: "pretrain")
        XCTAssertEqual(one.count, steps)
        XCTAssertEqual(one.count, other.count)
        for (step, (a, b)) in zip(one, other).enumerated() {
            XCTAssertEqual(b, a, accuracy: tolerance * abs(a), "step \(step): one process \(a), \(label) \(b)")
        }
    }

    /// MAMIM pretraining on 2 processes: every image's mask (and augmentation) draws from its place
    /// in the whole batch, so the loss sequence is one process's.
    func testPretrainingOnTwoProcessesMatchesOne() throws {
        _ = try writeROIs()
        let flow = try writePretrainFlow("pretrain", settings: "    steps: 20\n    batch: 16\n    reconstructions: 2")
        XCTAssertEqual(try BuiltTool.run(["run", flow.path, "--out", folder.appendingPathComponent("single").path]).status, 0)
        let (status, output) = try mpirun(2, ["run", flow.path, "--out", folder.appendingPathComponent("parallel").path])
        XCTAssertEqual(status, 0, output)
        try assertSamePretrainingLosses(steps: 20, tolerance: 1e-5, "two processes")
    }

    /// Two processes of two replicas each (`replicas: 2` under mpirun; four model copies on a
    /// 2-core machine) pretrain as one process with one replica: the same loss sequence up to the
    /// order of the sums.
    func testReplicasInsideEachProcessMatchOneProcess() throws {
        _ = try writeROIs()
        func flow(replicas: Int) throws -> URL {
            try writePretrainFlow("pretrain-\(replicas)", settings: """
                model: {name: ssmamba_micro, drop_path: 0.1}
                steps: 12
                batch: 16
                replicas: \(replicas)
                reconstructions: 0
            """)
        }
        let single = try BuiltTool.run(["run", try flow(replicas: 1).path, "--out", folder.appendingPathComponent("single").path])
        XCTAssertEqual(single.status, 0, single.output)
        let (status, output) = try mpirun(2, ["run", try flow(replicas: 2).path, "--out", folder.appendingPathComponent("parallel").path])
        XCTAssertEqual(status, 0, output)
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("parallel/report.json"))) as! [String: Any]
        XCTAssertEqual((report["counters"] as? [String: Int])?["pretrain.processes"], 2)
        XCTAssertEqual((report["counters"] as? [String: Int])?["pretrain.replicas"], 2)
        try assertSamePretrainingLosses(steps: 12, tolerance: 1e-4, "2 processes × 2 replicas")
    }

    /// The single and the parallel run: the same losses step by step, the same best checkpoint.
    func compare() throws {
        let one = try losses(folder.appendingPathComponent("single")), two = try losses(folder.appendingPathComponent("parallel"))
        XCTAssertEqual(one.count, two.count)
        XCTAssertGreaterThanOrEqual(one.count, 20)
        for (step, (a, b)) in zip(one, two).enumerated() {
            XCTAssertEqual(b, a, accuracy: 1e-5 * abs(a), "step \(step): one process \(a), two processes \(b)")
        }
        let a = try Checkpoint.read(from: folder.appendingPathComponent("single/finetune/best")).weights
        let b = try Checkpoint.read(from: folder.appendingPathComponent("parallel/finetune/best")).weights
        XCTAssertEqual(Set(a.entries.keys), Set(b.entries.keys))
        // Relative L2 over the whole model; per tensor, relative to its norm (or 0.01 for the few
        // tensors that are nearly zero, where float rounding alone is a large relative error).
        var (squaredNorm, squaredDifference) = (0.0, 0.0)
        for name in a.entries.keys {
            let x = try a.tensor(name).scalars, y = try b.tensor(name).scalars
            let norm = x.reduce(0.0) { $0 + Double($1) * Double($1) }
            let difference = zip(x, y).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
            (squaredNorm, squaredDifference) = (squaredNorm + norm, squaredDifference + difference)
            XCTAssertLessThanOrEqual(difference.squareRoot(), 1e-5 * max(norm.squareRoot(), 1e-2), "\(name): the checkpoints differ")
        }
        XCTAssertLessThanOrEqual((squaredDifference / squaredNorm).squareRoot(), 1e-5, "the checkpoints differ")
    }

    /// A rank killed mid-training ends the run within a minute (no rank waits for it forever), the
    /// last checkpoint stays valid, and --resume on one process finishes the training as the
    /// uninterrupted run did.
    func testKillingARankEndsTheRunAndItResumesOnOneProcess() throws {
        let flow = try writeFlow(epochs: 4, checkpointEvery: 3)
        let single = try BuiltTool.run(["run", flow.path, "--out", folder.appendingPathComponent("single").path])
        XCTAssertEqual(single.status, 0, single.output)
        let run = folder.appendingPathComponent("parallel")
        let launcher = BuiltTool.mpirunProcess(2, ["run", flow.path, "--out", run.path])
        try launcher.run()
        let last = run.appendingPathComponent("finetune/last/checkpoint.json")
        let deadline = Date().addingTimeInterval(120)
        while !FileManager.default.fileExists(atPath: last.path) && launcher.isRunning && Date() < deadline { usleep(50_000) }
        XCTAssertTrue(launcher.isRunning, "the run ended before a rank could be killed")
        // Kill one of the ranks (a child of mpirun) without warning.
        let ranks = try String(contentsOfFile: "/proc/\(launcher.processIdentifier)/task/\(launcher.processIdentifier)/children", encoding: .utf8)
            .split(separator: " ").compactMap { Int32($0) }
        XCTAssertEqual(ranks.count, 2, "mpirun's children: \(ranks)")
        kill(try XCTUnwrap(ranks.last), SIGKILL)
        let killed = Date()
        launcher.waitUntilExit()
        XCTAssertNotEqual(launcher.terminationStatus, 0)
        XCTAssertLessThan(Date().timeIntervalSince(killed), 60, "the surviving rank waited for the dead one")
        let resumed = try BuiltTool.run(["run", flow.path, "--out", run.path, "--resume"])
        XCTAssertEqual(resumed.status, 0, resumed.output)
        try compare()
    }

    /// Slide-level training under mpirun: the slides' embeddings are shared out between 2 ranks
    /// (each embeds every other slide into the shared embedding cache), every rank trains the same
    /// aggregator, and rank 0 writes the cross-validation a one-process run writes.
    func testSlideMILSharesOutTheEmbeddings() throws {
        var labels = "slide,patient,label\n"
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("slides"), withIntermediateDirectories: true)
        for i in 0..<6 {
            let purple = i % 2 == 0
            let pixels = (0..<(512 * 384)).flatMap { p -> [UInt8] in
                let (x, y) = (p % 512, p / 512)
                guard x >= 32 && x < 480 && y >= 32 && y < 352 else { return [242, 242, 242] }
                return (purple ? (x / 32 + y / 32) % 2 == 0 : (x / 32 + y / 32) % 7 == 0) ? [110, 60, 160] : [230, 140, 190]
            }
            try PyramidWriter.write(RGBImage(width: 512, height: 384, pixels: pixels), to: folder.appendingPathComponent("slides/s\(i).tif"),
                                    micronsPerPixel: 0.5, compression: .deflate)
            labels += "s\(i).tif,p\(i),\(purple ? "tumour" : "normal")\n"
        }
        try labels.write(to: folder.appendingPathComponent("labels.csv"), atomically: true, encoding: .utf8)
        var rng = RandomGenerator(seed: 1)
        let config = try ModelConfiguration.named("ssmamba_micro")
        try Checkpoint(manifest: Checkpoint.Manifest(model: config), weights: try Encoder(config: config, using: &rng).stateDictionary())
            .write(to: folder.appendingPathComponent("encoder"))
        func flow(_ name: String) throws -> String {
            let path = folder.appendingPathComponent("\(name).yaml").path
            try """
            flow: mil
            output: \(folder.appendingPathComponent(name).path)
            source: {kind: slides, path: \(folder.appendingPathComponent("slides").path), labels: \(folder.appendingPathComponent("labels.csv").path)}
            stages:
              - stage: tissue
              - stage: tiles
                mpp: 1.0
                size: 64
              - stage: cache
                path: \(folder.appendingPathComponent("tiles").path)
              - stage: slide_mil
                checkpoint: \(folder.appendingPathComponent("encoder").path)
                epochs: 40
                folds: 3
                cache: \(folder.appendingPathComponent("embeddings-\(name)").path)

            """.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        let single = try BuiltTool.run(["run", try flow("single")])
        XCTAssertEqual(single.status, 0, single.output)
        let (status, output) = try mpirun(2, ["run", try flow("parallel")])
        XCTAssertEqual(status, 0, output)
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("parallel/report.json"))) as! [String: Any]
        let counters = try XCTUnwrap(report["counters"] as? [String: Int])
        XCTAssertEqual(counters["slide_mil.processes"], 2)
        XCTAssertEqual(counters["slide_mil.embeddings_computed"], 3, "rank 0 embedded half of the slides: \(counters)")
        XCTAssertEqual(counters["slide_mil.embeddings_reused"], 6, "and read every bag back: \(counters)")
        let tables = try ["single", "parallel"].map { try String(contentsOf: folder.appendingPathComponent("\($0)/slide_mil/cross_validation.csv"), encoding: .utf8)
            .split(separator: "\n").map { $0.split(separator: ",").map(String.init) } }
        XCTAssertEqual(tables[0].count, 7)
        XCTAssertEqual(tables[0].count, tables[1].count)
        XCTAssertEqual(tables[0][0], tables[1][0])
        for (a, b) in zip(tables[0].dropFirst(), tables[1].dropFirst()) {
            XCTAssertEqual(Array(a.prefix(4)), Array(b.prefix(4)))
            for (x, y) in zip(a.dropFirst(4), b.dropFirst(4)) { XCTAssertEqual(Double(x) ?? -1, Double(y) ?? -2, accuracy: 1e-3, "\(a) vs \(b)") }
        }
    }
}
