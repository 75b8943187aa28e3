import Flow
import Foundation
import Randomness
import Slides
import SSMamba
import Stages
import Tensors
import Tiling
import XCTest

/// Two classes of 64² ROI images, one folder each (pink and purple with noise): a data set whose
/// labels a model can learn from colour.
func writeColourROIs(into dataset: URL, perClass: Int) throws -> URL {
    for (label, base) in [("pink", (230, 140, 190)), ("purple", (110, 60, 160))] {
        let classFolder = dataset.appendingPathComponent(label)
        try FileManager.default.createDirectory(at: classFolder, withIntermediateDirectories: true)
        for i in 0..<perClass {
            var pixels = [UInt8](repeating: 0, count: 64 * 64 * 3)
            for p in 0..<(64 * 64) {
                let noise = Int((p &* 2654435761 &+ i &* 97) % 21) - 10
                pixels[3 * p] = UInt8(base.0 + noise); pixels[3 * p + 1] = UInt8(base.1 + noise); pixels[3 * p + 2] = UInt8(base.2 + noise)
            }
            try PNGWriter.write(RGBImage(width: 64, height: 64, pixels: pixels), to: classFolder.appendingPathComponent("\(label)-\(i).png"))
        }
    }
    return dataset
}

/// The training stages on small data with known answers: nucleus patches from synthetic masks,
/// pretraining + fine-tuning on separable classes, streaming evaluation of a slide.
final class TrainingFlowTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("training-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    /// A little-endian int32 .npy file.
    func writeNumpy(_ values: [Int32], width: Int, height: Int, to url: URL) throws {
        var header = "{'descr': '<i4', 'fortran_order': False, 'shape': (\(height), \(width)), }"
        while (10 + header.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.count & 0xFF), UInt8(header.count >> 8)])
        data += Data(header.utf8)
        values.withUnsafeBufferPointer { data += Data(buffer: $0) }
        try data.write(to: url)
    }

    func testNucleusPatchesAreCentredLabelledAndSplitByRegion() throws {
        // 200×200 image, 2×2 regions of 100 px; nuclei as 6×6 squares with known centres and types.
        let (w, h) = (200, 200)
        var instance = [Int32](repeating: 0, count: w * h), type = [Int32](repeating: 0, count: w * h)
        let nuclei: [(x: Int, y: Int, type: Int32)] = [(30, 30, 1), (70, 40, 2), (150, 50, 3), (50, 150, 1), (150, 150, 2), (98, 98, 1)]
        for (id, n) in nuclei.enumerated() {
            for y in (n.y - 3)..<(n.y + 3) { for x in (n.x - 3)..<(n.x + 3) {
                instance[y * w + x] = Int32(id + 1)
                type[y * w + x] = (x == n.x - 3) ? 3 : n.type  // a minority of another type
            } }
        }
        var pixels = [UInt8](repeating: 0, count: w * h * 3)
        for i in 0..<(w * h) { pixels[3 * i] = UInt8(i % w); pixels[3 * i + 1] = UInt8(i / w) }
        let image = folder.appendingPathComponent("he.png")
        try PNGWriter.write(RGBImage(width: w, height: h, pixels: pixels), to: image)
        try writeNumpy(instance, width: w, height: h, to: folder.appendingPathComponent("inst.npy"))
        try writeNumpy(type, width: w, height: h, to: folder.appendingPathComponent("type.npy"))
        let result = try NucleusPatches.extract(image: image.path, instances: folder.appendingPathComponent("inst.npy").path,
                                                types: folder.appendingPathComponent("type.npy").path, patch: 32, regions: 2,
                                                classNames: ["a", "b", "c"], validationRegions: 1, testRegions: 1, seed: 4)
        XCTAssertEqual(result.droppedOnBorders, 1, "the nucleus at (98, 98) reaches across regions")
        XCTAssertEqual(result.tiles.count, 5)
        for tile in result.tiles {
            let n = nuclei[tile.column - 1]
            XCTAssertEqual(tile.label, ["a", "b", "c"][Int(n.type) - 1], "majority type")
            XCTAssertEqual(tile.image.width, 32)
            // The patch is centred on the centroid (n − 0.5, floored to n − 1 for these 6-px squares);
            // each image pixel encodes its own coordinates in red and green.
            let centre = (16 * 32 + 16) * 3
            XCTAssertEqual(Int(tile.image.pixels[centre]), n.x - 1)
            XCTAssertEqual(Int(tile.image.pixels[centre + 1]), n.y - 1)
            XCTAssertEqual(tile.level0X, n.x - 1 - 16)
        }
        // Whole regions per split: the tiles of one region share a split, and splits are all used.
        let splits = Dictionary(grouping: result.tiles) { ($0.level0X + 16) / 100 + 2 * (($0.level0Y + 16) / 100) }.mapValues { Set($0.map { $0.split! }) }
        XCTAssertTrue(splits.values.allSatisfy { $0.count == 1 })
        XCTAssertEqual(splits.count, 4)
        XCTAssertEqual(Set(result.tiles.map { $0.split! }), ["train", "validation", "test"])
    }

    /// Two classes that differ in colour and texture: fine-tuning from a pretrained encoder learns them.
    func testPretrainFinetuneAndEvaluateSlides() throws {
        let dataset = try writeColourROIs(into: folder.appendingPathComponent("rois"), perClass: 24)
        // A slide: left half pink tissue, right half purple tissue.
        let (w, h) = (1024, 512)
        var slidePixels = [UInt8](repeating: 0, count: w * h * 3)
        for y in 0..<h { for x in 0..<w {
            let c = x < w / 2 ? (230, 140, 190) : (110, 60, 160)
            let o = (y * w + x) * 3
            slidePixels[o] = UInt8(c.0); slidePixels[o + 1] = UInt8(c.1); slidePixels[o + 2] = UInt8(c.2)
        } }
        let slides = folder.appendingPathComponent("slides")
        try FileManager.default.createDirectory(at: slides, withIntermediateDirectories: true)
        try PyramidWriter.write(RGBImage(width: w, height: h, pixels: slidePixels), to: slides.appendingPathComponent("s.tif"),
                                micronsPerPixel: 0.5, compression: .deflate)
        let run = folder.appendingPathComponent("run")
        let yaml = """
            flow: train
            output: \(run.path)
            sources:
              rois: {kind: roi_folder, path: \(dataset.path)}
              slides: {kind: slides, path: \(slides.path), pattern: "*.tif"}
            stages:
              - stage: decode
                from: rois
              - stage: cache
                path: \(folder.appendingPathComponent("cache").path)
              - stage: pretrain
                from: cache
                steps: 15
                batch: 8
                reconstructions: 2
              - stage: finetune
                from: cache
                init: pretrain
                epochs: 3
                batch: 8
                validation_fraction: 0.25
                test_fraction: 0.25
              - stage: tissue
                from: slides
              - stage: tiles
                mpp: 1.0
                size: 64
                min_tissue: 0
              - stage: cache
                name: slide_cache
                path: \(folder.appendingPathComponent("cache").path)
              - stage: evaluate_slides
                checkpoint: finetune
                heatmap_class: purple
            """
        let path = folder.appendingPathComponent("flow.yaml").path
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        let report = try FlowRunner.run(FlowRunner.load(path), printer: nil).report
        XCTAssertEqual(report.status, .completed, report.markdown)
        XCTAssertEqual(report.failures, 0, report.markdown)
        XCTAssertEqual(report.counters["pretrain.steps"], 15)
        XCTAssertEqual(report.counters["finetune.initialised_from_pretrained"], 1)
        XCTAssertEqual(report.counters["finetune.test_tiles"], 12)
        XCTAssertGreaterThanOrEqual(report.metrics["finetune.test_accuracy"] ?? 0, 0.9, report.markdown)
        XCTAssertTrue(FileManager.default.fileExists(atPath: run.appendingPathComponent("pretrain/reconstruction-1.png").path))
        XCTAssertTrue(FileManager.default.fileExists(atPath: run.appendingPathComponent("finetune/best/model.safetensors").path))

        // Streaming evaluation: one row per tile, a heatmap aligned by µm/px, a slide score.
        let table = try CSVTable(path: run.appendingPathComponent("evaluate_slides/s.tiles.csv").path)
        let rows = table.rows.map(\.values)
        XCTAssertEqual(Array(table.header.prefix(TileTable.columns.count)), TileTable.columns, "the one tile-table layout")
        XCTAssertEqual(rows.count, (1024 / 128) * (512 / 128))  // 64-px tiles at 1 µm/px cover 128 level-0 px
        XCTAssertTrue(rows.allSatisfy { $0["level0_size"] == "128.00" && $0["slide"]!.hasSuffix("s.tif") }, "\(rows.first ?? [:])")
        let purple = try XCTUnwrap(table.header.last)
        func meanPurple(_ right: Bool) -> Double {
            let values = rows.filter { (Int($0["column"]!)! >= 4) == right }.map { Double($0[purple]!)! }
            return values.reduce(0, +) / Double(values.count)
        }
        XCTAssertGreaterThan(meanPurple(true), meanPurple(false) + 0.3, "the purple half is more purple than the pink half")
        let heatmap = try TIFFSlide(path: run.appendingPathComponent("evaluate_slides/s.heatmap.tif").path)
        XCTAssertEqual(heatmap.levels[0].width, 512)  // 8 tiles across, 64 map pixels per tile (the most)
        XCTAssertEqual(heatmap.micronsPerPixel ?? 0, 1, accuracy: 1e-6)  // 64-µm tiles over 64 pixels
        let scores = try String(contentsOf: run.appendingPathComponent("evaluate_slides/slide_scores.csv"), encoding: .utf8)
        XCTAssertTrue(scores.hasPrefix("slide,tiles,mean_p_pink,mean_p_purple,predicted\n"), scores)
    }
}

/// Fine-tuning on slide tiles keeps a patient's slides in one split.
final class PatientSplitTests: XCTestCase {
    func testSlidesOfOnePatientShareASplit() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("patients-\(UUID())")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("slides"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        // Six slides of three patients; every slide all tissue, 4×4 tiles of 64 px at 1 µm/px.
        var labels = "slide,patient,label\n"
        for i in 0..<6 {
            let (w, h) = (512, 512)
            var pixels = [UInt8](repeating: 0, count: w * h * 3)
            for y in 0..<h { for x in 0..<w {
                let c = (x / 16 + y / 16) % 2 == 0 ? (110, 60, 160) : (230, 140, 190)
                let o = (y * w + x) * 3
                pixels[o] = UInt8(c.0); pixels[o + 1] = UInt8(c.1); pixels[o + 2] = UInt8(c.2)
            } }
            try PyramidWriter.write(RGBImage(width: w, height: h, pixels: pixels), to: folder.appendingPathComponent("slides/s\(i).tif"),
                                    micronsPerPixel: 0.5, compression: .deflate)
            labels += "s\(i).tif,p\(i / 2),\(i % 2 == 0 ? "a" : "b")\n"
        }
        try labels.write(to: folder.appendingPathComponent("labels.csv"), atomically: true, encoding: .utf8)
        let path = folder.appendingPathComponent("flow.yaml").path
        try """
        flow: patients
        output: \(folder.appendingPathComponent("run").path)
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
            min_tissue: 0
          - stage: cache
            path: \(folder.appendingPathComponent("cache").path)
          - stage: finetune
            epochs: 1
            batch: 8
            validation_fraction: 0.2
            test_fraction: 0.2
        """.write(toFile: path, atomically: true, encoding: .utf8)
        let report = try FlowRunner.run(FlowRunner.load(path), printer: nil).report
        XCTAssertEqual(report.failures, 0, report.markdown)
        // By patient: one of three patients (two slides, 32 tiles) each for validation and test;
        // split by slide it would have been one slide (16 tiles) each.
        XCTAssertEqual(report.counters["finetune.validation_tiles"], 32, report.markdown)
        XCTAssertEqual(report.counters["finetune.test_tiles"], 32, report.markdown)
        XCTAssertEqual(report.counters["finetune.train_tiles"], 32, report.markdown)
    }
}

/// `model:` with fields set: built, saved in the checkpoint, and a pretrained encoder is loaded only
/// into the network it was made for.
final class ModelParameterTests: XCTestCase {
    func testModelsFromFlowFiles() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("models-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let rois = try writeColourROIs(into: folder.appendingPathComponent("rois"), perClass: 12)
        func flow(finetuneModel: String, pretrainModel: String = "{name: ssmamba_micro, dim: 32, heads: 2, directions: [h, v_flip], local_kernels: [3, 5]}") throws -> String {
            let path = folder.appendingPathComponent("flow-\(UUID()).yaml").path
            try """
            flow: models
            output: \(folder.appendingPathComponent("run").path)
            source: {kind: roi_folder, path: \(rois.path)}
            stages:
              - stage: decode
              - stage: cache
                path: \(folder.appendingPathComponent("cache").path)
              - stage: pretrain
                model: \(pretrainModel)
                steps: 3
                batch: 4
                reconstructions: 0
              - stage: finetune
                from: cache
                init: pretrain
                model: \(finetuneModel)
                epochs: 1
                batch: 4
                validation_fraction: 0.25
                test_fraction: 0.25
            """.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        // Another network than the pretrained one: refused, naming what differs.
        let mismatch = try FlowRunner.run(FlowRunner.load(try flow(finetuneModel: "ssmamba_micro")), printer: nil).report
        XCTAssertEqual(mismatch.failures, 1, mismatch.markdown)
        XCTAssertTrue(mismatch.markdown.contains("dim 32 → 64") && mismatch.markdown.contains("directions"), mismatch.markdown)

        // The same fields: trained, and the checkpoints record the configuration.
        let same = "{name: ssmamba_micro, dim: 32, heads: 2, directions: [h, v_flip], local_kernels: [3, 5], drop_path: 0.05}"
        let report = try FlowRunner.run(FlowRunner.load(try flow(finetuneModel: same)), printer: nil).report
        XCTAssertEqual(report.failures, 0, report.markdown)
        XCTAssertEqual(report.counters["finetune.initialised_from_pretrained"], 1)
        for checkpoint in ["pretrain/checkpoint", "finetune/best"] {
            let model = try Checkpoint.read(from: folder.appendingPathComponent("run/\(checkpoint)")).manifest.model
            XCTAssertEqual(model.dim, 32, checkpoint)
            XCTAssertEqual(model.directions, ["h", "v_flip"], checkpoint)
            XCTAssertEqual(model.localKernels, [3, 5], checkpoint)
        }
        XCTAssertEqual(try Checkpoint.read(from: folder.appendingPathComponent("run/finetune/best")).manifest.model.dropPathRate, 0.05)

        // Fields that do not fit together: an error naming the step's line before anything runs.
        XCTAssertThrowsError(try FlowRunner.run(FlowRunner.load(try flow(finetuneModel: same, pretrainModel: "{name: ssmamba_micro, patch: 7}")), printer: nil)) { error in
            XCTAssertTrue("\(error)".contains(":8:5:") && "\(error)".contains("multiple of patchSize 7"), "\(error)")
        }
    }
}

/// The recipe knobs of the training stages, each with a known answer.
final class RecipeTests: XCTestCase {
    func testColourJitterSaturationAndContrast() {
        // Two-tone tile: left half (200, 100, 50), right half (100, 150, 200).
        var pixels = [UInt8](repeating: 0, count: 8 * 8 * 3)
        for i in 0..<64 { let c: [UInt8] = i % 8 < 4 ? [200, 100, 50] : [100, 150, 200]; pixels.replaceSubrange((3 * i)..<(3 * i + 3), with: c) }
        let tile = RGBImage(width: 8, height: 8, pixels: pixels)
        var rng = RandomGenerator(seed: 1)
        var grey = Augmentation.evaluation
        grey.saturation = 0...0
        let greyed = Augmentation.image(grey.batch([tile], size: 8, using: &rng), index: 0)
        for x in [0, 7] {
            let (r, g, b) = (greyed[x: x, y: 3, channel: 0], greyed[x: x, y: 3, channel: 1], greyed[x: x, y: 3, channel: 2])
            XCTAssertTrue(abs(Int(r) - Int(g)) <= 1 && abs(Int(g) - Int(b)) <= 1, "saturation 0 gives grey: \(r) \(g) \(b)")
        }
        let expectedGrey: Double = 0.299 * 200 + 0.587 * 100 + 0.114 * 50
        XCTAssertEqual(Double(greyed[x: 0, y: 0, channel: 0]), expectedGrey, accuracy: 1)
        var flat = Augmentation.evaluation
        flat.contrast = 0...0
        let flattened = Augmentation.image(flat.batch([tile], size: 8, using: &rng), index: 0)
        let otherGrey: Double = 0.299 * 100 + 0.587 * 150 + 0.114 * 200
        let mean = (expectedGrey + otherGrey) / 2
        for x in [0, 7] { for c in 0..<3 { XCTAssertEqual(Double(flattened[x: x, y: 5, channel: c]), mean, accuracy: 1, "contrast 0: every pixel the mean grey") } }
        // Off (1…1), the output is the plain resampled tile.
        var off = Augmentation.evaluation
        (off.contrast, off.saturation) = (1...1, 1...1)
        XCTAssertEqual(Augmentation.image(off.batch([tile], size: 8, using: &rng), index: 0), tile)
    }

    func testFrozenEncoderDecoderMLPWarmupAndSimMIM() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("recipe-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let rois = try writeColourROIs(into: folder.appendingPathComponent("rois"), perClass: 12)
        let path = folder.appendingPathComponent("flow.yaml").path
        try """
        flow: recipe
        output: \(folder.appendingPathComponent("run").path)
        source: {kind: roi_folder, path: \(rois.path)}
        stages:
          - stage: decode
          - stage: cache
            path: \(folder.appendingPathComponent("cache").path)
          - stage: pretrain
            decoder_mlp_ratio: 2
            precision: bf16
            steps: 2
            batch: 4
            reconstructions: 0
          - stage: finetune
            from: cache
            init: pretrain
            freeze_encoder: true
            warmup: 0.5
            epochs: 2
            batch: 4
            lr: 0.001
            validation_fraction: 0.25
            test_fraction: 0.25
          - stage: pretrain
            name: pretrain_tiny
            from: cache
            model: ssmamba_tiny_64
            masking: simmim
            steps: 1
            batch: 2
            reconstructions: 0
        """.write(toFile: path, atomically: true, encoding: .utf8)
        let report = try FlowRunner.run(FlowRunner.load(path), printer: nil).report
        XCTAssertEqual(report.failures, 0, report.markdown)
        let run = folder.appendingPathComponent("run")
        let pretrained = try Checkpoint.read(from: run.appendingPathComponent("pretrain/checkpoint")).weights
        XCTAssertTrue(pretrained.entries.keys.contains { $0.hasPrefix("decoder.blocks.0.mlp.") }, "decoder blocks with MLPs")
        // bf16 where the CPU multiplies it, else fp32 (with a warning); the resumable checkpoint says which.
        let trained = try Checkpoint.read(from: run.appendingPathComponent("pretrain/last")).manifest.training
        XCTAssertEqual(trained?.precision, OneDNN.hasBFloat16Hardware ? .bfloat16 : .float32)
        // The probe changed the head only.
        let probe = try Checkpoint.read(from: run.appendingPathComponent("finetune/best")).weights
        XCTAssertGreaterThan(report.counters["finetune.frozen_encoder_parameters"] ?? 0, 0)
        for key in probe.entries.keys where !key.hasPrefix("head.") {
            XCTAssertEqual(try probe.tensor(key), try pretrained.tensor(key), "\(key) moved in a frozen encoder")
        }
        // Warm-up over half of all steps: the rate climbs linearly from base / warm-up steps.
        let rows = try String(contentsOf: run.appendingPathComponent("finetune/train_log.csv"), encoding: .utf8).split(separator: "\n").dropFirst()
        let rates = rows.map { Double($0.split(separator: ",")[2])! }
        let warmupSteps = Int((0.5 * Double(rates.count)).rounded())
        XCTAssertEqual(rates[0], 0.001 / Double(warmupSteps), accuracy: 1e-9)
        XCTAssertEqual(rates[warmupSteps - 1], 0.001, accuracy: 1e-9)
        // Drop-path is 0 in pretraining unless the flow sets it (ssmamba_tiny_64 fine-tunes at 0.1).
        let tiny = try Checkpoint.read(from: run.appendingPathComponent("pretrain_tiny/checkpoint"))
        XCTAssertEqual(tiny.manifest.model.dropPathRate, 0)
        // SimMIM masking: the encoder's input mask token instead of the decoder's; the manifest says which.
        XCTAssertEqual(tiny.manifest.notes["masking"], "simmim")
        XCTAssertEqual(try tiny.weights.tensor("decoder.input_mask_token").shape, [192])
        XCTAssertNil(tiny.weights.entries["decoder.mask_token"])
        XCTAssertNotNil(pretrained.entries["decoder.mask_token"])
    }

    /// `replicas`: the training stages run copies of the model side by side, each on its share of
    /// every batch (3 replicas: shares of 2, 1, 1 and 1, 1, 1 images, on 2 cores, with threads
    /// waiting for one another); the loss curves of pretraining and fine-tuning are one replica's
    /// up to the order of the sums, and the report counts the replicas.
    func testReplicasTrainLikeOneModel() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("replicas-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let rois = try writeColourROIs(into: folder.appendingPathComponent("rois"), perClass: 8)
        func losses(replicas: Int) throws -> (pretrain: [Double], finetune: [Double], report: FlowReport) {
            let path = folder.appendingPathComponent("replicas-\(replicas).yaml").path
            try """
            flow: replicas
            output: \(folder.appendingPathComponent("run-\(replicas)").path)
            source: {kind: roi_folder, path: \(rois.path)}
            stages:
              - stage: decode
              - stage: cache
                path: \(folder.appendingPathComponent("cache").path)
              - stage: pretrain
                model: {name: ssmamba_micro, drop_path: 0.1}
                steps: 4
                batch: 4
                replicas: \(replicas)
                reconstructions: 0
              - stage: finetune
                from: cache
                init: pretrain
                model: {name: ssmamba_micro, drop_path: 0.1}
                epochs: 2
                batch: 3
                replicas: \(replicas)
                validation_fraction: 0.25
                test_fraction: 0.25
            """.write(toFile: path, atomically: true, encoding: .utf8)
            let report = try FlowRunner.run(FlowRunner.load(path), printer: nil).report
            XCTAssertEqual(report.failures, 0, report.markdown)
            func column(_ stage: String) throws -> [Double] {
                let log = folder.appendingPathComponent("run-\(replicas)/\(stage)/train_log.csv")
                return try String(contentsOf: log, encoding: .utf8).split(separator: "\n").dropFirst().map { Double($0.split(separator: ",")[1])! }
            }
            return (try column("pretrain"), try column("finetune"), report)
        }
        let (one, three) = (try losses(replicas: 1), try losses(replicas: 3))
        XCTAssertEqual(three.report.counters["pretrain.replicas"], 3)
        XCTAssertEqual(three.report.counters["finetune.replicas"], 3)
        XCTAssertEqual(one.report.counters["finetune.replicas"], 1)
        XCTAssertEqual(one.pretrain.count, 4)
        XCTAssertEqual(one.finetune.count, three.finetune.count)
        XCTAssertGreaterThan(one.finetune.count, 2)
        for (a, b) in zip(one.pretrain, three.pretrain) { XCTAssertEqual(a, b, accuracy: 1e-3 * abs(a), "pretraining loss") }
        for (a, b) in zip(one.finetune, three.finetune) { XCTAssertEqual(a, b, accuracy: 1e-3 * abs(a), "fine-tuning loss") }
    }
}
