import Foundation
import Randomness
import SSMamba
import Tensors
import XCTest

/// The Swift model against the PyTorch reference (scripts/reference/ssmamba_reference.py), from
/// fixtures computed in float64 by scripts/reference/make_model_fixtures.py.
final class PyTorchParityTests: XCTestCase {
    static let forwardTolerance = 1e-4
    static let gradientTolerance = 1e-3

    func load(_ name: String) throws -> (SafeTensorsFile, ModelConfiguration) {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/\(name)")
        let file = try SafeTensorsFile(contentsOf: url)
        let json = try XCTUnwrap(file.metadata["config"]).data(using: .utf8)!
        return (file, try JSONDecoder().decode(ModelConfiguration.self, from: json))
    }

    func assertGradientsMatch(_ model: ParameterOwner, _ file: SafeTensorsFile, file source: StaticString = #filePath, line: UInt = #line) throws {
        var worst = (0.0, "")
        for p in model.parameters {
            let expected = try file.tensor("grad/" + p.name)
            let error = GradientCheck.relativeError(p.gradient, expected)
            XCTAssertLessThan(error, Self.gradientTolerance, "gradient of \(p.name): relative L2 error \(error)", file: source, line: line)
            if error > worst.0 { worst = (error, p.name) }
        }
        print("parity: \(model.parameters.count) gradients, worst relative L2 error \(worst.0) (\(worst.1))")
    }

    func testClassifierForwardLossAndEveryGradient() throws {
        try checkClassifier("parity_classifier.safetensors")
    }

    /// The learned softmax merge and causal local convolutions against the reference.
    func testVariantWithLearnedMergeAndCausalConvolution() throws {
        let (_, config) = try load("parity_variant.safetensors")
        XCTAssertEqual(config.merge, .softmax)
        XCTAssertEqual(config.localPadding, .causal)
        try checkClassifier("parity_variant.safetensors")
    }

    /// A local path per scan direction, along its visiting order, against the reference.
    func testLocalPathPerDirection() throws {
        let (_, config) = try load("parity_per_direction.safetensors")
        XCTAssertTrue(config.localPerDirection)
        try checkClassifier("parity_per_direction.safetensors")
    }

    /// R1: convolutional stem and levels, then SSMamba levels with attention, against the reference.
    func testHierarchicalLayout() throws {
        let (_, config) = try load("parity_hierarchical.safetensors")
        XCTAssertEqual(config.layout, .hierarchical)
        try checkClassifier("parity_hierarchical.safetensors")
    }

    func checkClassifier(_ name: String) throws {
        let (file, config) = try load(name)
        var rng = RandomGenerator(seed: 0)
        let model = try Classifier(config: config, using: &rng)
        try model.loadStateDictionary(file, prefix: "param/", source: name)
        let images = try file.tensor("input.images")
        let labels = try file.int64s("input.labels").map { Int($0) }
        // Training mode keeps activations for the backward; the fixture's drop rates are 0.
        let logits = model.forward(images, training: true, using: &rng)
        // The evaluation forward may take other kernels (oneDNN's direct convolution instead of
        // im2col + GEMM): the same function up to the order of the sums.
        let evaluationError = GradientCheck.relativeError(model.forward(images, training: false, using: &rng), logits)
        XCTAssertLessThan(evaluationError, 1e-6, "evaluation and training forwards differ")
        _ = model.forward(images, training: true, using: &rng)
        let forwardError = GradientCheck.relativeError(logits, try file.tensor("output.logits"))
        XCTAssertLessThan(forwardError, Self.forwardTolerance, "logits: relative L2 error \(forwardError)")
        print("parity: logits relative L2 error \(forwardError)")
        let smoothing = Float(try XCTUnwrap(file.metadata["smoothing"]))!
        let (loss, gradient) = CrossEntropy.loss(logits: logits, labels: labels, smoothing: smoothing)
        let expectedLoss = try file.tensor("output.loss").scalars[0]
        XCTAssertEqual(Double(loss), Double(expectedLoss), accuracy: 1e-4 * Double(abs(expectedLoss)))
        model.zeroGradients()
        model.backward(gradient)
        try assertGradientsMatch(model, file)
    }

    func testEncoderOnAFixedVisibleTokenSet() throws {
        let (file, config) = try load("parity_encoder_masked.safetensors")
        var rng = RandomGenerator(seed: 0)
        let encoder = try Encoder(config: config, using: &rng)
        try encoder.loadStateDictionary(file, prefix: "param/", source: "parity_encoder_masked.safetensors")
        let images = try file.tensor("input.images")
        let positionTable = try file.entries["input.positions"].map { _ in try file.int64s("input.positions") } ?? []
        let batch = images.shape[0]
        let grid = TokenGrid(batch: batch, height: config.gridSide, width: config.gridSide, positions: positionTable.map { Int($0) })
        let tokens = encoder.forward(images, grid: grid, training: true, using: &rng)
        let forwardError = GradientCheck.relativeError(tokens, try file.tensor("output.tokens"))
        XCTAssertLessThan(forwardError, Self.forwardTolerance, "tokens: relative L2 error \(forwardError)")
        print("parity: masked-encoder tokens relative L2 error \(forwardError)")
        encoder.zeroGradients()
        encoder.backward(try file.tensor("input.weights"))
        try assertGradientsMatch(encoder, file)
    }

    /// SimMIM's encoder: every cell, the hidden patches' tokens replaced by the mask token.
    func testEncoderWithHiddenPatchesReplacedByAMaskToken() throws {
        let name = "parity_encoder_mask_token.safetensors"
        let (file, config) = try load(name)
        var rng = RandomGenerator(seed: 0)
        final class MaskedEncoder: ParameterOwner {
            let encoder: Encoder, maskToken: MaskToken
            init(_ encoder: Encoder, _ maskToken: MaskToken) { (self.encoder, self.maskToken) = (encoder, maskToken) }
            var parameters: [Parameter] { encoder.parameters + maskToken.parameters }
        }
        let model = MaskedEncoder(try Encoder(config: config, using: &rng), MaskToken("mask_token", width: config.dim, using: &rng))
        try model.loadStateDictionary(file, prefix: "param/", source: name)
        let images = try file.tensor("input.images")
        let hidden = try file.int64s("input.hidden").map { $0 != 0 }
        XCTAssertTrue(hidden.contains(true) && hidden.contains(false))
        let grid = model.encoder.fullGrid(batch: images.shape[0])
        let patches = model.maskToken.substitute(model.encoder.embedPatches(images, grid: grid, training: true), hidden: hidden)
        let tokens = model.encoder.encode(patchTokens: patches, grid: grid, training: true, using: &rng)
        let forwardError = GradientCheck.relativeError(tokens, try file.tensor("output.tokens"))
        XCTAssertLessThan(forwardError, Self.forwardTolerance, "tokens: relative L2 error \(forwardError)")
        print("parity: mask-token encoder tokens relative L2 error \(forwardError)")
        model.zeroGradients()
        let gPatches = model.encoder.backwardToPatchTokens(try file.tensor("input.weights"))
        model.encoder.backwardPatchEmbedding(model.maskToken.backward(gPatches, hidden: hidden))
        try assertGradientsMatch(model, file)
    }

    func testLoadingRejectsMismatchedWeights() throws {
        let (file, config) = try load("parity_classifier.safetensors")
        var other = config
        other.dim = 16
        other.heads = 2
        var rng = RandomGenerator(seed: 0)
        let model = try Classifier(config: other, using: &rng)
        XCTAssertThrowsError(try model.loadStateDictionary(file, prefix: "param/", source: "parity_classifier.safetensors")) { error in
            let text = String(describing: error)
            XCTAssertTrue(text.contains("parity_classifier.safetensors") && text.contains("shape"), text)
        }
    }
}
