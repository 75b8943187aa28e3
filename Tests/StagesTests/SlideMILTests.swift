import Flow
import Foundation
import Randomness
import Slides
import SSMamba
import Stages
import Tensors
import XCTest

/// Whole-slide tasks on synthetic slides whose label is visible in their tissue colour.
final class SlideMILTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("mil-\(UUID())")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("slides"), withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    func testEmbeddingsAreCachedAndABMILSeparatesTheClasses() throws {
        // Six slides: glass around a block of tissue, purple-rich ("tumour") or pink ("normal").
        var labels = "slide,patient,label,time,event\n"
        for i in 0..<6 {
            let tumour = i % 2 == 0
            let (w, h) = (768, 512)
            var pixels = [UInt8](repeating: 242, count: w * h * 3)
            for y in 64..<448 { for x in 64..<704 {
                let purple = tumour ? ((x / 32 + y / 32) % 2 == 0) : ((x / 32 + y / 32) % 7 == 0)
                let c = purple ? (110, 60, 160) : (230, 140, 190)
                let o = (y * w + x) * 3
                pixels[o] = UInt8(c.0); pixels[o + 1] = UInt8(c.1); pixels[o + 2] = UInt8(c.2)
            } }
            try PyramidWriter.write(RGBImage(width: w, height: h, pixels: pixels), to: folder.appendingPathComponent("slides/s\(i).tif"),
                                    micronsPerPixel: 0.5, compression: .deflate)
            labels += "s\(i).tif,p\(i),\(tumour ? "tumour" : "normal"),\(tumour ? 10 + i : 50 + i),1\n"
        }
        try labels.write(to: folder.appendingPathComponent("labels.csv"), atomically: true, encoding: .utf8)
        // An encoder checkpoint (random weights: the colours alone separate the bags).
        var rng = RandomGenerator(seed: 1)
        let config = try ModelConfiguration.named("ssmamba_micro")
        let encoder = try Encoder(config: config, using: &rng)
        let checkpoint = folder.appendingPathComponent("encoder")
        try Checkpoint(manifest: Checkpoint.Manifest(model: config), weights: encoder.stateDictionary()).write(to: checkpoint)

        func run(task: String) throws -> FlowReport {
            let yaml = """
                flow: mil
                output: \(folder.appendingPathComponent("run-\(task)").path)
                source:
                  kind: slides
                  path: \(folder.appendingPathComponent("slides").path)
                  pattern: "*.tif"
                  labels: \(folder.appendingPathComponent("labels.csv").path)
                stages:
                  - stage: tissue
                  - stage: tiles
                    mpp: 1.0
                    size: 64
                  - stage: cache
                    path: \(folder.appendingPathComponent("tiles").path)
                  - stage: slide_mil
                    checkpoint: \(checkpoint.path)
                    task: \(task)
                    epochs: 60
                    folds: 3
                    cache: \(folder.appendingPathComponent("embeddings").path)
                """
            let path = folder.appendingPathComponent("\(task).yaml").path
            try yaml.write(toFile: path, atomically: true, encoding: .utf8)
            return try FlowRunner.run(FlowRunner.load(path), printer: nil).report
        }
        let classification = try run(task: "classification")
        XCTAssertEqual(classification.failures, 0, classification.markdown)
        XCTAssertEqual(classification.counters["slide_mil.embeddings_computed"], 6)
        XCTAssertGreaterThanOrEqual(classification.metrics["slide_mil.cv_accuracy"] ?? 0, 5.0 / 6, classification.markdown)
        let rows = try String(contentsOf: folder.appendingPathComponent("run-classification/slide_mil/cross_validation.csv"), encoding: .utf8)
        XCTAssertEqual(rows.split(separator: "\n").count, 7)

        let survival = try run(task: "survival")
        XCTAssertEqual(survival.counters["slide_mil.embeddings_reused"], 6, "embeddings come from the cache the second time")
        XCTAssertNil(survival.counters["slide_mil.embeddings_computed"])
        let c = try XCTUnwrap(survival.metrics["slide_mil.cv_c_index"])
        XCTAssertGreaterThanOrEqual(c, 0.7, "tumour slides have the early events: \(survival.markdown)")
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder.appendingPathComponent("run-survival/slide_mil/abmil.safetensors").path))
    }
}
