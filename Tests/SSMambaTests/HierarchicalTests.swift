import Foundation
import Randomness
import SSMamba
import Tensors
import XCTest

/// R1, the hierarchical layout: its convolution against the definition, every new layer's
/// backward against finite differences, the whole classifier's gradients, and learning.
final class HierarchicalTests: XCTestCase {
    var rng = RandomGenerator(seed: 61)

    /// A 32-px R1 small enough for finite differences: widths 6-12-24-48, 1-1-2-1 blocks.
    static func tinyHierarchical(classes: Int) -> ModelConfiguration {
        var config = ModelConfiguration(name: "r1-test")
        config.layout = .hierarchical
        config.imageSize = 32
        config.dim = 6
        config.levelDepths = [1, 1, 2, 1]
        config.levelHeads = [1, 1, 2, 2]
        config.levelAttentionBlocks = [0, 0, 1, 1]
        config.mlpRatio = 2
        config.dropPathRate = 0
        config.directions = ["h", "v_flip", "w2"]
        config.classes = classes
        return config
    }

    func testConvolutionMatchesTheDefinition() {
        // y[b, oy, ox, o] = bias[o] + Σ_{c,ky,kx} W[o, c, ky, kx] · x[b, s·oy − 1 + ky, s·ox − 1 + kx, c], zero outside.
        for stride in [1, 2] {
            let (height, width, input, output) = (5, 4, 3, 2)
            let layer = Convolution2D("conv", inChannels: input, outChannels: output, stride: stride, using: &rng)
            layer.projection.bias!.value = Tensor.normal([output], using: &rng)
            let x = Tensor.normal([2, height * width, input], using: &rng)
            let y = layer.forward(x, height: height, width: width)
            let (outHeight, outWidth) = (layer.outputSide(height), layer.outputSide(width))
            XCTAssertEqual(y.shape, [2, outHeight * outWidth, output])
            // The evaluation forward gives the same; so does the im2col + GEMM path that bf16
            // products take, up to bfloat16's rounding of the operands (2⁻⁹ relative each).
            let evaluation = layer.forward(x, height: height, width: width, keeping: false)
            XCTAssertLessThan(GradientCheck.relativeError(evaluation, y), 1e-6, "stride \(stride)")
            let columnsPath = BLAS.withPrecision(.bfloat16) { layer.forward(x, height: height, width: width, keeping: false) }
            XCTAssertLessThan(GradientCheck.relativeError(columnsPath, y), 1e-2, "stride \(stride)")
            let w = layer.projection.weight.value
            for b in 0..<2 { for oy in 0..<outHeight { for ox in 0..<outWidth { for o in 0..<output {
                var expected = Double(layer.projection.bias!.value.scalars[o])
                for c in 0..<input { for ky in 0..<3 { for kx in 0..<3 {
                    let (iy, ix) = (stride * oy - 1 + ky, stride * ox - 1 + kx)
                    guard iy >= 0, iy < height, ix >= 0, ix < width else { continue }
                    expected += Double(w[o, c, ky, kx]) * Double(x[b, iy * width + ix, c])
                } } }
                XCTAssertEqual(Double(y[b, oy * outWidth + ox, o]), expected, accuracy: 1e-5)
            } } } }
        }
    }

    func testConvolutionGradients() {
        for (stride, bias) in [(1, true), (2, false)] {
            let layer = Convolution2D("conv", inChannels: 3, outChannels: 4, stride: stride, bias: bias, using: &rng)
            GradientCheck.check(input: Tensor.normal([2, 5 * 6, 3], using: &rng), parameters: layer.parameters,
                                forward: { layer.forward($0, height: 5, width: 6) }, backward: layer.backward)
        }
    }

    func testConvolutionBlockAndStemGradients() {
        // Weights of O(1) (the init's std 0.02 feeds LayerNorm inputs so small that Float32
        // differences cannot resolve them).
        let block = ConvolutionBlock("block", dim: 3, dropPath: 0, using: &rng)
        for p in block.parameters { p.value = Tensor.normal(p.value.shape, std: 0.5, using: &rng) }
        GradientCheck.check(input: Tensor.normal([2, 16, 3], using: &rng), parameters: block.parameters,
                            forward: { x in var r = RandomGenerator(seed: 0); return block.forward(x, side: 4, training: true, using: &r) },
                            backward: block.backward)
        let stem = ConvolutionStem("stem", channels: 3, dim: 6, using: &rng)  // middle width 3 (LayerNorm over 2 is ±1)
        for p in stem.parameters { p.value = Tensor.normal(p.value.shape, std: 0.5, using: &rng) }
        XCTAssertEqual(stem.outputSide(8), 2)
        GradientCheck.check(input: Tensor.normal([2, 3, 8, 8], using: &rng), parameters: stem.parameters,
                            forward: { stem.forward($0, training: true) }, backward: stem.backward)
    }

    func testShapesNamesAndCost() throws {
        let config = try ModelConfiguration.named("ssmamba_r1_tiny")
        XCTAssertEqual(config.outputSide, 7)
        XCTAssertEqual(config.outputWidth, 640)
        let cost = ModelCost(config: config)
        XCTAssertGreaterThan(cost.forwardFLOPs, 5e9)  // MambaVision-T is 4.4 GMAC ≈ 8.8 GFLOP
        let small = Self.tinyHierarchical(classes: 3)
        let model = try Classifier(config: small, using: &rng)
        let names = Set(model.parameters.map(\.name))
        for expected in ["patch_embed.conv1.weight", "levels.0.blocks.0.conv1.weight", "levels.1.downsample.weight",
                         "levels.2.blocks.0.mixer.scans.0.A_log", "levels.2.blocks.1.mixer.qkv.weight", "norm.weight", "head.weight"] {
            XCTAssertTrue(names.contains(expected), "missing \(expected); have \(names.sorted().prefix(8))…")
        }
        XCTAssertEqual(model.forward(Tensor.normal([2, 3, 32, 32], using: &rng), training: false, using: &rng).shape, [2, 3])
        // MAMIM refuses the layout with a reason.
        XCTAssertThrowsError(try MaskedAutoencoder(config: small, using: &rng)) { error in
            XCTAssertTrue(String(describing: error).contains("hierarchical"))
        }
        var bad = small
        bad.imageSize = 48
        XCTAssertThrowsError(try bad.validate())
    }

    func testClassifierGradientsEveryParameter() throws {
        let model = try Classifier(config: Self.tinyHierarchical(classes: 3), using: &rng)
        for p in model.parameters where p.name.contains("lpr") || p.name.contains("conv") || p.name.contains("downsample") {
            p.value = Tensor.normal(p.value.shape, std: 0.3, using: &rng)
        }
        GradientCheck.checkClassifier(model, images: Tensor.normal([2, 3, 32, 32], using: &rng), labels: [1, 2])
    }

    func testLearnsTheSyntheticTask() throws {
        var config = Self.tinyHierarchical(classes: 3)
        config.dim = 8
        config.levelHeads = [1, 1, 2, 2]
        let (firstLoss, lastLoss, accuracy) = try TrainingTests.learnSyntheticTask(config, side: 32, steps: 100, rate: 5e-3, seed: 31)
        print("R1 synthetic task: loss \(firstLoss) → \(lastLoss), held-out accuracy \(accuracy)")
        XCTAssertGreaterThanOrEqual(accuracy, 0.95)
        XCTAssertLessThan(lastLoss, firstLoss / 4)
    }
}
