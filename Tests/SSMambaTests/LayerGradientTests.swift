import Foundation
import Randomness
import SSMamba
import Tensors
import XCTest

/// Every layer's backward against central finite differences on tiny shapes.
final class LayerGradientTests: XCTestCase {
    var rng = RandomGenerator(seed: 2026)

    func randomize(_ parameters: [Parameter], std: Float = 0.5) {
        for p in parameters { p.value = Tensor.normal(p.value.shape, std: std, using: &rng) }
    }

    func testLinear() {
        let layer = Linear("fc", inFeatures: 5, outFeatures: 3, using: &rng)
        randomize(layer.parameters)
        GradientCheck.check(input: Tensor.normal([2, 4, 5], using: &rng), parameters: layer.parameters,
                            forward: { layer.forward($0) }, backward: layer.backward)
        let noBias = Linear("fc", inFeatures: 4, outFeatures: 6, bias: false, using: &rng)
        GradientCheck.check(input: Tensor.normal([3, 4], using: &rng), parameters: noBias.parameters,
                            forward: { noBias.forward($0) }, backward: noBias.backward)
    }

    func testLayerNormalization() {
        let layer = LayerNormalization("norm", width: 7)
        randomize(layer.parameters)
        GradientCheck.check(input: Tensor.normal([2, 3, 7], using: &rng), parameters: layer.parameters,
                            forward: { layer.forward($0) }, backward: layer.backward)
    }

    func testDepthwiseConv1DSameAndCausal() {
        for (kernel, padding) in [(3, DepthwiseConv1D.Padding.same), (5, .same), (4, .causal)] {
            let layer = DepthwiseConv1D("conv", channels: 5, kernel: kernel, padding: padding, using: &rng)
            GradientCheck.check(input: Tensor.normal([2, 6, 5], using: &rng), parameters: layer.parameters,
                                forward: { layer.forward($0) }, backward: layer.backward)
        }
    }

    func testDepthwiseConv1DMatchesDefinition() {
        let layer = DepthwiseConv1D("conv", channels: 1, kernel: 3, padding: .same, using: &rng)
        layer.weight.value = Tensor(shape: [1, 1, 3], scalars: [1, 10, 100])
        layer.bias.value = Tensor(shape: [1], scalars: [0.5])
        let y = layer.forward(Tensor(shape: [1, 4, 1], scalars: [1, 2, 3, 4]))
        // y[t] = x[t−1] + 10·x[t] + 100·x[t+1] + 0.5
        XCTAssertEqual(y.scalars, [210.5, 321.5, 432.5, 43.5])
        let causal = DepthwiseConv1D("conv", channels: 1, kernel: 3, padding: .causal, using: &rng)
        causal.weight.value = Tensor(shape: [1, 1, 3], scalars: [1, 10, 100])
        causal.bias.value = Tensor(shape: [1], scalars: [0])
        // y[t] = x[t−2] + 10·x[t−1] + 100·x[t]
        XCTAssertEqual(causal.forward(Tensor(shape: [1, 4, 1], scalars: [1, 2, 3, 4])).scalars, [100, 210, 321, 432])
    }

    func testLocalPerceptionResidualFullAndSparse() {
        let layer = LocalPerceptionResidual("lpr", channels: 3)
        randomize(layer.parameters)
        let full = TokenGrid.full(batch: 2, height: 3, width: 4)
        GradientCheck.check(input: Tensor.normal([2, 12, 3], using: &rng), parameters: layer.parameters,
                            forward: { layer.forward($0, grid: full) }, backward: layer.backward)
        let sparse = TokenGrid(batch: 2, height: 3, width: 4, positions: [0, 1, 5, 6, 11, 2, 3, 4, 8, 9])
        GradientCheck.check(input: Tensor.normal([2, 5, 3], using: &rng), parameters: layer.parameters,
                            forward: { layer.forward($0, grid: sparse) }, backward: layer.backward)
    }

    func testLocalPerceptionResidualStartsAsIdentityAndIgnoresMaskedCells() {
        let layer = LocalPerceptionResidual("lpr", channels: 2)
        let x = Tensor.normal([1, 3, 2], using: &rng)
        let grid = TokenGrid(batch: 1, height: 2, width: 2, positions: [0, 1, 3])
        XCTAssertEqual(layer.forward(x, grid: grid), x, "zero-initialised LPR must be the identity")
        // With an all-ones kernel, token 0 (cell 0) sees cells 0, 1, 3 (cell 2 is masked = 0).
        layer.weight.value = Tensor(repeating: 1, shape: [2, 1, 3, 3])
        let y = layer.forward(x, grid: grid)
        for c in 0..<2 {
            XCTAssertEqual(y[0, 0, c], x[0, 0, c] + x[0, 0, c] + x[0, 1, c] + x[0, 2, c], accuracy: 1e-5)
        }
    }

    func testPatchEmbeddingFullAndVisible() {
        let layer = PatchEmbedding("patch_embed", channels: 3, dim: 4, patch: 2, using: &rng)
        randomize(layer.parameters)
        let full = TokenGrid.full(batch: 1, height: 2, width: 3)
        GradientCheck.check(input: Tensor.normal([1, 3, 4, 6], using: &rng), parameters: layer.parameters,
                            forward: { layer.forward($0, grid: full) }, backward: { layer.backward($0) })
        let visible = TokenGrid(batch: 2, height: 2, width: 3, positions: [1, 4, 0, 5])
        GradientCheck.check(input: Tensor.normal([2, 3, 4, 6], using: &rng), parameters: layer.parameters,
                            forward: { layer.forward($0, grid: visible) }, backward: { layer.backward($0) })
    }

    /// The learned softmax merge (and the causal local path) by finite differences, logits included.
    func testDirectionalMultiScaleLearnedMergeAndCausalConvolution() throws {
        let directions = try ["h", "v_flip", "w2"].map { try XCTUnwrap(ScanDirection(name: $0)) }
        let layer = DirectionalMultiScale("mixer", dim: 4, expand: 2, state: 3, directions: directions, kernels: [3], merge: .softmax,
                                          padding: .causal, using: &rng)
        XCTAssertTrue(layer.parameters.contains { $0.name == "mixer.merge_logits" })
        randomize(layer.parameters, std: 0.4)
        let full = TokenGrid.full(batch: 2, height: 3, width: 3)
        GradientCheck.check(input: Tensor.normal([2, 9, 4], using: &rng), parameters: layer.parameters,
                            forward: { layer.forward($0, grid: full) }, backward: layer.backward)
    }

    func testDirectionalMultiScaleWithALocalPathPerDirection() throws {
        let directions = try ["h", "v_flip", "w2"].map { try XCTUnwrap(ScanDirection(name: $0)) }
        let layer = DirectionalMultiScale("mixer", dim: 4, expand: 2, state: 3, directions: directions, kernels: [3, 5],
                                          localPerDirection: true, using: &rng)
        XCTAssertTrue(layer.parameters.contains { $0.name == "mixer.scans.1.convs.1.weight" })
        XCTAssertFalse(layer.parameters.contains { $0.name == "mixer.convs.0.weight" })
        randomize(layer.parameters, std: 0.4)
        let full = TokenGrid.full(batch: 2, height: 3, width: 3)
        GradientCheck.check(input: Tensor.normal([2, 9, 4], using: &rng), parameters: layer.parameters,
                            forward: { layer.forward($0, grid: full) }, backward: layer.backward)
        // On a masked grid each direction convolves the visible tokens in its own visiting order.
        let visible = TokenGrid(batch: 2, height: 3, width: 3, positions: [0, 2, 4, 7, 8, 1, 3, 5, 6, 8])
        GradientCheck.check(input: Tensor.normal([2, 5, 4], using: &rng), parameters: layer.parameters,
                            forward: { layer.forward($0, grid: visible) }, backward: layer.backward)
    }

    /// One horizontal direction visits tokens in storage order: its own local path is the shared one.
    func testAPerDirectionLocalPathOfARasterScanIsTheSharedPath() throws {
        let directions = try [XCTUnwrap(ScanDirection(name: "h"))]
        var a = RandomGenerator(seed: 9), b = RandomGenerator(seed: 9)
        let shared = DirectionalMultiScale("m", dim: 4, expand: 2, state: 3, directions: directions, kernels: [3], using: &a)
        let own = DirectionalMultiScale("m", dim: 4, expand: 2, state: 3, directions: directions, kernels: [3], localPerDirection: true, using: &b)
        let x = Tensor.normal([2, 6, 4], using: &rng), grid = TokenGrid.full(batch: 2, height: 2, width: 3)
        XCTAssertEqual(shared.forward(x, grid: grid).scalars, own.forward(x, grid: grid).scalars)
        let v = try [XCTUnwrap(ScanDirection(name: "v"))]
        var c = RandomGenerator(seed: 9), d = RandomGenerator(seed: 9)
        let sharedV = DirectionalMultiScale("m", dim: 4, expand: 2, state: 3, directions: v, kernels: [3], using: &c)
        let ownV = DirectionalMultiScale("m", dim: 4, expand: 2, state: 3, directions: v, kernels: [3], localPerDirection: true, using: &d)
        XCTAssertNotEqual(sharedV.forward(x, grid: grid).scalars, ownV.forward(x, grid: grid).scalars, "a vertical scan convolves vertical neighbours")
    }

    /// Equal logits make the learned merge exactly the mean.
    func testSoftmaxMergeStartsAsTheMean() throws {
        let directions = try ["h", "v"].map { try XCTUnwrap(ScanDirection(name: $0)) }
        var a = RandomGenerator(seed: 4), b = RandomGenerator(seed: 4)
        let mean = DirectionalMultiScale("m", dim: 4, expand: 2, state: 3, directions: directions, kernels: [3], merge: .mean, using: &a)
        let learned = DirectionalMultiScale("m", dim: 4, expand: 2, state: 3, directions: directions, kernels: [3], merge: .softmax, using: &b)
        let x = Tensor.normal([1, 4, 4], using: &rng), grid = TokenGrid.full(batch: 1, height: 2, width: 2)
        XCTAssertEqual(mean.forward(x, grid: grid).scalars, learned.forward(x, grid: grid).scalars)
    }

    func testConfigurationsWithoutNewerFieldsStillLoad() throws {
        let old = #"{"name": "old", "dim": 32, "depth": 2, "classes": 4}"#
        let config = try JSONDecoder().decode(ModelConfiguration.self, from: Data(old.utf8))
        XCTAssertEqual(config.dim, 32)
        XCTAssertEqual(config.localPadding, .same)
        XCTAssertEqual(config.merge, .mean)
        // Every field away from its default survives a round trip (a field the decoder forgets fails here).
        var changed = ModelConfiguration(name: "every-field")
        changed.imageSize = 96; changed.patchSize = 8; changed.channels = 4; changed.dim = 24; changed.depth = 3
        changed.stateSize = 8; changed.expand = 3; changed.directions = ["h", "w3_flip"]; changed.localKernels = [5, 7]; changed.localPerDirection = true
        changed.localPadding = .causal; changed.merge = .softmax; changed.attentionBlocks = 1; changed.heads = 4
        changed.mlpRatio = 2; changed.useLPR = false; changed.dropPathRate = 0.2; changed.headDropout = 0.3
        changed.classes = 5; changed.scanMemory = .storeStates
        changed.layout = .hierarchical; changed.levelDepths = [2, 2]; changed.levelHeads = [1, 2]
        changed.levelAttentionBlocks = [0, 1]; changed.convolutionLevels = 1
        let back = try JSONDecoder().decode(ModelConfiguration.self, from: JSONEncoder().encode(changed))
        XCTAssertEqual(back, changed)
        let fields = Mirror(reflecting: changed).children.count
        XCTAssertEqual(fields, 26, "a new configuration field needs a line in init(from:) and in this test")
    }

    func testDirectionalMultiScaleEveryDirectionKind() throws {
        let directions = try ["h", "h_flip", "v", "v_flip", "w2", "w2_flip"].map { try XCTUnwrap(ScanDirection(name: $0)) }
        for (state, kernels) in [(16, [3]), (3, [3, 5])] {
            let layer = DirectionalMultiScale("mixer", dim: 4, expand: 2, state: state, directions: directions, kernels: kernels, using: &rng)
            // At initialisation (projections of std 0.02, Δ ≈ 0.001…0.1) the loss is too flat in most
            // parameters for Float32 differences: move every parameter to O(1) values (A = −exp(A_log) ≈ −1, Δ ≈ 0.7).
            randomize(layer.parameters, std: 0.4)
            let full = TokenGrid.full(batch: 2, height: 3, width: 3)
            GradientCheck.check(input: Tensor.normal([2, 9, 4], using: &rng), parameters: layer.parameters, 
                                forward: { layer.forward($0, grid: full) }, backward: layer.backward)
            let masked = TokenGrid(batch: 2, height: 3, width: 3, positions: [0, 4, 5, 7, 1, 2, 6, 8])
            GradientCheck.check(input: Tensor.normal([2, 4, 4], using: &rng), parameters: layer.parameters, 
                                forward: { layer.forward($0, grid: masked) }, backward: layer.backward)
        }
    }

    func testSelfAttention() {
        let layer = SelfAttention("attn", dim: 6, heads: 2, using: &rng)
        randomize(layer.parameters)
        GradientCheck.check(input: Tensor.normal([2, 5, 6], using: &rng), parameters: layer.parameters,
                            forward: { layer.forward($0) }, backward: layer.backward)
    }

    func testMLP() {
        let layer = MLP("mlp", dim: 4, hidden: 8, using: &rng)
        randomize(layer.parameters)
        GradientCheck.check(input: Tensor.normal([3, 4], using: &rng), parameters: layer.parameters,
                            forward: { layer.forward($0) }, backward: layer.backward)
    }

    func testDropPathAndDropoutReuseTheirMask() {
        var dropPath = DropPath(probability: 0.5)
        let x = Tensor.normal([8, 3], using: &rng)
        let y = dropPath.forward(x, training: true, using: &rng)
        let g = dropPath.backward(Tensor(repeating: 1, shape: [8, 3]))
        for b in 0..<8 {
            let kept = y[b, 0] != 0
            XCTAssertEqual(g[b, 0], kept ? 2 : 0)
            if kept { XCTAssertEqual(y[b, 1], 2 * x[b, 1], accuracy: 1e-6) } else { XCTAssertEqual(y[b, 1], 0) }
        }
        XCTAssertEqual(dropPath.forward(x, training: false, using: &rng), x)
        var dropout = Dropout(probability: 0.25)
        let d = dropout.forward(Tensor(repeating: 1, shape: [1000]), training: true, using: &rng)
        let zeros = d.scalars.filter { $0 == 0 }.count
        XCTAssertTrue(zeros > 180 && zeros < 320, "\(zeros) zeros of 1000 at p = 0.25")
        XCTAssertEqual(dropout.backward(Tensor(repeating: 1, shape: [1000])), d)
    }

    func testCrossEntropyWithSmoothing() {
        let logits = Tensor.normal([3, 4], using: &rng)
        let labels = [2, 0, 3]
        let (loss, gradient) = CrossEntropy.loss(logits: logits, labels: labels, smoothing: 0.1)
        let numeric = GradientCheck.numeric(logits, step: 1e-2) { Double(CrossEntropy.loss(logits: $0, labels: labels, smoothing: 0.1).loss) }
        XCTAssertLessThan(GradientCheck.relativeError(gradient, numeric), 1e-3)
        // Uniform logits: loss = log K whatever the smoothing.
        XCTAssertEqual(CrossEntropy.loss(logits: Tensor(zeros: [2, 4]), labels: [0, 1], smoothing: 0.3).loss, Float(Foundation.log(4.0)), accuracy: 1e-6)
        XCTAssertGreaterThan(loss, 0)
    }

    func testClassifierEndToEnd() throws {
        var config = ModelConfiguration.tinyTest(classes: 3, dim: 4, imageSize: 8, patchSize: 2)
        config.mlpRatio = 2
        config.dropPathRate = 0
        config.directions = ["h", "v_flip", "w2"]
        let model = try Classifier(config: config, using: &rng)
        randomize(model.parameters.filter { $0.name.contains("lpr") }, std: 0.3)
        GradientCheck.checkClassifier(model, images: Tensor.normal([2, 3, 8, 8], using: &rng), labels: [1, 2])
    }
}
