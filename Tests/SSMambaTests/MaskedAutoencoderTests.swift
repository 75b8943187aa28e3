import Foundation
import Randomness
import SSMamba
import Tensors
import XCTest

/// MAMIM: gradients by finite differences, masking, loss definition, weight transfer, learning.
final class MaskedAutoencoderTests: XCTestCase {
    func tiny(_ masking: MaskedPretrainingSettings.Masking = .mae) -> (ModelConfiguration, MaskedPretrainingSettings) {
        var config = ModelConfiguration.tinyTest(classes: 3)
        config.dropPathRate = 0
        var settings = MaskedPretrainingSettings()
        settings.masking = masking
        settings.decoderDim = 8
        settings.decoderHeads = 2
        settings.decoderDepth = 1
        return (config, settings)
    }

    func testGradientsMatchFiniteDifferences() throws {
        try checkGradients(.mae, names: ["decoder.mask_token"])
    }

    /// SimMIM: the encoder runs on every cell; its input mask token gets the hidden cells' gradients.
    func testSimMIMGradientsMatchFiniteDifferences() throws {
        try checkGradients(.simmim, names: ["decoder.input_mask_token"])
    }

    func checkGradients(_ masking: MaskedPretrainingSettings.Masking, names: [String]) throws {
        let (config, settings) = tiny(masking)
        var rng = RandomGenerator(seed: 5)
        let model = try MaskedAutoencoder(config: config, settings: settings, using: &rng)
        // At initialisation the decoder's weights are tiny (std 0.02): the visible tokens' path through
        // attention would carry gradients below Float finite-difference resolution. Larger weights make
        // every path measurable.
        for p in model.parameters where p.name.hasPrefix("decoder.") { p.value = Tensor.normal(p.value.shape, std: 0.5, using: &rng) }
        let images = Tensor.normal([2, 3, 16, 16], using: &rng)
        let visible = model.randomVisibleGrid(batch: 2, using: &rng)
        XCTAssertEqual(visible.count, 4)  // 25 % of 16 cells
        func loss() -> Double {
            var unused = RandomGenerator(seed: 0)
            return Double(model.loss(images, visible: visible, training: false, using: &unused).loss)
        }
        model.zeroGradients()
        var unused = RandomGenerator(seed: 0)
        let trained = model.loss(images, visible: visible, training: true, using: &unused).loss
        XCTAssertEqual(Double(trained), loss(), accuracy: 1e-6, "training and evaluation forwards agree")
        _ = model.loss(images, visible: visible, training: true, using: &unused)
        model.backward()
        XCTAssertEqual(model.parameters.filter { $0.name.hasSuffix("mask_token") }.map(\.name), names)
        let checked = model.parameters.filter { p in
            (names + ["decoder.embed.weight", "decoder.pred.bias", "decoder.norm.weight", "patch_embed.weight", "norm.bias"]).contains(p.name)
                || p.name.hasPrefix("decoder.blocks.0.mixer") || p.name.hasPrefix("blocks.0.mixer.out_proj")
        }
        XCTAssertGreaterThanOrEqual(checked.count, 8)
        for parameter in checked {
            let numeric = GradientCheck.numeric(parameter, step: 1e-2, loss)
            let error = GradientCheck.relativeError(parameter.gradient, numeric)
            XCTAssertLessThan(error, 2e-2, "\(parameter.name): relative error \(error)")
        }
    }

    func testLossIsOverMaskedNormalisedPatchesOnly() throws {
        let (config, settings) = tiny()
        var rng = RandomGenerator(seed: 1)
        let model = try MaskedAutoencoder(config: config, settings: settings, using: &rng)
        let images = Tensor.normal([1, 3, 16, 16], using: &rng)
        let visible = model.randomVisibleGrid(batch: 1, using: &rng)
        let (loss, predicted) = model.loss(images, visible: visible, training: false, using: &rng)
        let target = MaskedAutoencoder.normalisedPatches(images, patch: 4)
        var total = 0.0, count = 0
        for cell in 0..<16 where !visible.positions.contains(cell) {
            for j in 0..<48 { let d = Double(predicted.scalars[cell * 48 + j] - target.scalars[cell * 48 + j]); total += d * d; count += 1 }
        }
        XCTAssertEqual(Double(loss), total / Double(count), accuracy: 1e-5)
        // The reconstruction keeps visible patches and un-normalises the predicted hidden ones with
        // the true patch's mean and deviation: (reconstructed − mean) / deviation is the prediction.
        let reconstructed = model.reconstruct(images, visible: visible)
        func raw(_ t: Tensor, _ cell: Int) -> [Float] {  // a patch's pixels in (row, column, channel) order
            var values: [Float] = []
            for y in 0..<4 { for x in 0..<4 { for c in 0..<3 { values.append(t.scalars[(c * 16 + (cell / 4) * 4 + y) * 16 + (cell % 4) * 4 + x]) } } }
            return values
        }
        for cell in 0..<16 {
            let original = raw(images, cell), rebuilt = raw(reconstructed, cell)
            if visible.positions.contains(cell) {
                XCTAssertEqual(rebuilt, original, "visible patch \(cell) changed")
            } else {
                let mean = original.reduce(0, +) / 48
                let deviation = (original.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 48 + 1e-6).squareRoot()
                for j in 0..<48 { XCTAssertEqual((rebuilt[j] - mean) / deviation, predicted.scalars[cell * 48 + j], accuracy: 1e-4) }
            }
        }
        // Each target patch has zero mean and unit variance.
        let patch = Array(target.scalars[0..<48])
        XCTAssertEqual(patch.reduce(0, +) / 48, 0, accuracy: 1e-5)
        XCTAssertEqual(patch.map { $0 * $0 }.reduce(0, +) / 48, 1, accuracy: 1e-3)
    }

    /// Whatever the encoder sees, no hidden pixel reaches the prediction: changing them changes
    /// only the target.
    func testHiddenPixelsDoNotReachThePrediction() throws {
        for masking in MaskedPretrainingSettings.Masking.allCases {
            let (config, settings) = tiny(masking)
            var rng = RandomGenerator(seed: 3)
            let model = try MaskedAutoencoder(config: config, settings: settings, using: &rng)
            let images = Tensor.normal([2, 3, 16, 16], using: &rng)
            let visible = model.randomVisibleGrid(batch: 2, using: &rng)
            let changed = MaskedAutoencoder.replacingHiddenPatches(images, visible: visible, patch: config.patchSize) { _, _, _, _ in
                rng.uniform(-3, 3)
            }
            XCTAssertNotEqual(changed, images)
            var unused = RandomGenerator(seed: 0)
            let (loss, predicted) = model.loss(images, visible: visible, training: false, using: &unused)
            let (changedLoss, changedPrediction) = model.loss(changed, visible: visible, training: false, using: &unused)
            XCTAssertEqual(changedPrediction, predicted, "\(masking): hidden pixels changed the prediction")
            XCTAssertNotEqual(changedLoss, loss, "\(masking): the target is the hidden pixels")
        }
    }

    func testPretrainedEncoderLoadsIntoAClassifierAndPretrainingLearns() throws {
        for masking in MaskedPretrainingSettings.Masking.allCases { try checkLearning(masking) }
    }

    func checkLearning(_ masking: MaskedPretrainingSettings.Masking) throws {
        var (config, settings) = tiny(masking)
        config.imageSize = 16
        var rng = RandomGenerator(seed: 2)
        let model = try MaskedAutoencoder(config: config, settings: settings, using: &rng)
        let optimizer = AdamW(settings: AdamW.Settings())
        // Images with structure (smooth gradients) so masked patches are predictable from visible ones.
        func batch() -> Tensor {
            var t = Tensor(zeros: [8, 3, 16, 16])
            for b in 0..<8 {
                let (fx, fy, phase) = (rng.uniform(0.1, 0.4), rng.uniform(0.1, 0.4), rng.uniform(0, 6))
                for c in 0..<3 { for y in 0..<16 { for x in 0..<16 {
                    t.scalars[((b * 3 + c) * 16 + y) * 16 + x] = sin(fx * Float(x) + fy * Float(y) + phase + Float(c))
                } } }
            }
            return t
        }
        var first: Float = 0, last: Float = 0
        for step in 0..<120 {
            model.zeroGradients()
            let images = batch()
            let (loss, _) = model.loss(images, visible: model.randomVisibleGrid(batch: 8, using: &rng), training: true, using: &rng)
            model.backward()
            optimizer.update(model.parameters, learningRate: 2e-3)
            if step < 10 { first += loss / 10 }
            if step >= 110 { last += loss / 10 }
        }
        print(String(format: "MAMIM toy (\(masking)): loss %.3f → %.3f", first, last))
        XCTAssertLessThan(last, 0.6 * first, "\(masking)")
        let classifier = try Classifier(config: config, using: &rng)
        var encoderState = model.stateDictionary()
        encoderState.entries = encoderState.entries.filter { !$0.key.hasPrefix("decoder.") }
        try classifier.encoder.loadStateDictionary(encoderState, source: "pretrained")
        XCTAssertEqual(classifier.encoder.parameters.first!.value, model.encoder.parameters.first!.value)
    }
}
