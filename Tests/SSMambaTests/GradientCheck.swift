import Foundation
import Randomness
import SSMamba
import Tensors
import XCTest

/// Central finite differences for the layers: L = Σ w ⊙ f(·) evaluated in Double, each input
/// element or parameter element moved by ±h in turn.
enum GradientCheck {
    /// ||analytic − numeric|| / max(||numeric||, 1e-6).
    static func relativeError(_ analytic: Tensor, _ numeric: Tensor) -> Double {
        var difference = 0.0, norm = 0.0
        for (a, n) in zip(analytic.scalars, numeric.scalars) {
            difference += Double(a - n) * Double(a - n)
            norm += Double(n) * Double(n)
        }
        return difference.squareRoot() / max(norm.squareRoot(), 1e-6)
    }

    static func loss(_ y: Tensor, _ w: Tensor) -> Double {
        zip(y.scalars, w.scalars).reduce(0) { $0 + Double($1.0) * Double($1.1) }
    }

    /// Numerical gradient of `loss(tensor)` with respect to every element of `tensor`.
    static func numeric(_ tensor: Tensor, step h: Float, _ loss: (Tensor) -> Double) -> Tensor {
        var result = Tensor(zeros: tensor.shape)
        var probe = tensor
        for i in 0..<tensor.count {
            let original = probe.scalars[i]
            probe.scalars[i] = original + h
            let plus = loss(probe)
            probe.scalars[i] = original - h
            let minus = loss(probe)
            probe.scalars[i] = original
            result.scalars[i] = Float((plus - minus) / (2 * Double(h)))
        }
        return result
    }

    /// Numerical gradient with respect to a parameter, perturbing it in place.
    static func numeric(_ parameter: Parameter, step h: Float, _ loss: () -> Double) -> Tensor {
        let saved = parameter.value
        defer { parameter.value = saved }
        return numeric(saved, step: h) { probe in
            parameter.value = probe
            return loss()
        }
    }

    /// Checks input and parameter gradients of a layer.
    ///
    /// `forward` must run the layer on its argument; `backward` must run its backward for the
    /// upstream gradient and return ∂L/∂input. Parameter gradients are zeroed first.
    static func check(input: Tensor, parameters: [Parameter], step: Float = 1e-2, tolerance: Double = 1e-2,
                      seed: UInt64 = 99, forward: (Tensor) -> Tensor, backward: (Tensor) -> Tensor,
                      file: StaticString = #filePath, line: UInt = #line) {
        var rng = RandomGenerator(seed: seed)
        let output = forward(input)
        let w = Tensor.normal(output.shape, using: &rng)
        parameters.forEach { $0.zeroGradient() }
        let gradInput = backward(w)
        let analyticParameters = parameters.map(\.gradient)
        let numericInput = numeric(input, step: step) { loss(forward($0), w) }
        let error = relativeError(gradInput, numericInput)
        XCTAssertLessThan(error, tolerance, "input gradient: relative error \(error)", file: file, line: line)
        for (parameter, analytic) in zip(parameters, analyticParameters) {
            let numericParameter = numeric(parameter, step: step) { loss(forward(input), w) }
            let e = relativeError(analytic, numericParameter)
            XCTAssertLessThan(e, tolerance, "\(parameter.name): relative error \(e)", file: file, line: line)
        }
    }
}

extension GradientCheck {
    /// A whole classifier's backward against central differences of its label loss: three elements
    /// (first, middle, last) of every parameter tensor (the whole model is too many probes). The
    /// configuration's drop rates must be 0, so training and evaluation forwards agree.
    static func checkClassifier(_ model: Classifier, images: Tensor, labels: [Int], file: StaticString = #filePath, line: UInt = #line) {
        func loss() -> Double {
            var r = RandomGenerator(seed: 0)
            return Double(CrossEntropy.loss(logits: model.forward(images, training: false, using: &r), labels: labels).loss)
        }
        model.zeroGradients()
        var r = RandomGenerator(seed: 0)
        model.backward(CrossEntropy.loss(logits: model.forward(images, training: true, using: &r), labels: labels).gradient)
        for parameter in model.parameters {
            let analytic = parameter.gradient
            for index in Set([0, parameter.value.count / 2, parameter.value.count - 1]) {
                let original = parameter.value.scalars[index]
                parameter.value.scalars[index] = original + 1e-2
                let plus = loss()
                parameter.value.scalars[index] = original - 1e-2
                let minus = loss()
                parameter.value.scalars[index] = original
                let numeric = (plus - minus) / 2e-2
                XCTAssertEqual(Double(analytic.scalars[index]), numeric, accuracy: 2e-3 + 2e-2 * abs(numeric),
                               "\(parameter.name)[\(index)]", file: file, line: line)
            }
        }
    }
}

extension ModelConfiguration {
    /// A tiny hybrid model for tests: 16 px images, patch 4 (4×4 tokens), dim 16, one DMS block
    /// and one attention block.
    static func tinyTest(classes: Int, dim: Int = 16, imageSize: Int = 16, patchSize: Int = 4) -> ModelConfiguration {
        var config = ModelConfiguration(name: "tiny-test")
        config.imageSize = imageSize
        config.patchSize = patchSize
        config.dim = dim
        config.depth = 2
        config.attentionBlocks = 1
        config.heads = 2
        config.classes = classes
        return config
    }
}
