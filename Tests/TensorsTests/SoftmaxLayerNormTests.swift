import Foundation
import Tensors
import XCTest

final class SoftmaxTests: XCTestCase {
    func reference(_ x: [Float], outer: Int, length: Int, inner: Int) -> [Float] {
        var y = [Float](repeating: 0, count: x.count)
        for o in 0..<outer { for i in 0..<inner {
            let idx = (0..<length).map { (o * length + $0) * inner + i }
            let top = idx.map { Double(x[$0]) }.max() ?? 0
            let total = idx.reduce(0.0) { $0 + Foundation.exp(Double(x[$1]) - top) }
            for j in idx { y[j] = Float(Foundation.exp(Double(x[j]) - top) / total) }
        } }
        return y
    }

    func testForwardAlongEveryAxis() {
        let shape = [3, 17, 5]
        let x = Tensor(shape: shape, scalars: randomArray(255, std: 5, seed: 3))
        for axis in 0..<3 {
            let (outer, length, inner) = Reduction.split(shape, axis: axis)
            assertClose(x.softmax(alongAxis: axis).scalars, reference(x.scalars, outer: outer, length: length, inner: inner),
                        absolute: 1e-7, relative: 1e-5, "axis \(axis)")
        }
    }

    func testLargeLogitsStayFinite() {
        let x = Tensor(shape: [1, 4], scalars: [1000, 999, -1000, 0])
        let y = x.softmax().scalars
        XCTAssertTrue(y.allSatisfy(\.isFinite))
        XCTAssertEqual(y[0], 1 / (1 + Float(Foundation.exp(-1.0))), accuracy: 1e-6)
    }

    func testBackwardMatchesFiniteDifferences() {
        for (outer, length, inner) in [(3, 7, 1), (2, 5, 3), (1, 33, 1)] {
            let n = outer * length * inner
            let x = randomArray(n, std: 2, seed: 5)
            let g = randomArray(n, seed: 6)
            let forward: ([Float]) -> [Float] = { input in
                apply(input) { Softmax.forward($0, outer: outer, length: length, inner: inner, into: $1) }
            }
            let y = forward(x)
            var gx = [Float](repeating: 0, count: n)
            y.withUnsafeBufferPointer { ys in g.withUnsafeBufferPointer { gs in gx.withUnsafeMutableBufferPointer {
                Softmax.backward(ys, gs, outer: outer, length: length, inner: inner, into: $0)
            } } }
            assertClose(gx, numericalGradient(of: forward, at: x, weights: g, step: 1e-2), absolute: 1e-3, relative: 1e-2)
        }
    }
}

final class LayerNormTests: XCTestCase {
    func testForwardMatchesDoubleReference() {
        let (rows, width) = (5, 37)
        let x = randomArray(rows * width, std: 3, seed: 1).map { $0 + 10 }
        let gamma = randomArray(width, seed: 2), beta = randomArray(width, seed: 3)
        let (y, _, _) = run(x, gamma, beta, rows, width)
        var expected = [Float]()
        for r in 0..<rows {
            let row = x[(r * width)..<((r + 1) * width)].map(Double.init)
            let mu = row.reduce(0, +) / Double(width)
            let variance = row.reduce(0) { $0 + ($1 - mu) * ($1 - mu) } / Double(width)
            for (i, v) in row.enumerated() {
                expected.append(Float((v - mu) / (variance + 1e-5).squareRoot() * Double(gamma[i]) + Double(beta[i])))
            }
        }
        assertClose(y, expected, absolute: 1e-5, relative: 1e-5)
    }

    func run(_ x: [Float], _ gamma: [Float], _ beta: [Float], _ rows: Int, _ width: Int) -> ([Float], [Float], [Float]) {
        var y = [Float](repeating: 0, count: x.count)
        var mean = [Float](repeating: 0, count: rows), rstd = [Float](repeating: 0, count: rows)
        x.withUnsafeBufferPointer { xs in gamma.withUnsafeBufferPointer { gs in beta.withUnsafeBufferPointer { bs in
            y.withUnsafeMutableBufferPointer { ys in mean.withUnsafeMutableBufferPointer { ms in rstd.withUnsafeMutableBufferPointer {
                LayerNorm.forward(xs, gamma: gs, beta: bs, rows: rows, width: width, into: ys, mean: ms, inverseStd: $0)
            } } }
        } } }
        return (y, mean, rstd)
    }

    func testBackwardMatchesFiniteDifferences() {
        let (rows, width) = (3, 19)
        let x = randomArray(rows * width, std: 2, seed: 7)
        let gamma = randomArray(width, seed: 8), beta = randomArray(width, seed: 9)
        let g = randomArray(rows * width, seed: 10)
        let (_, mean, rstd) = run(x, gamma, beta, rows, width)
        var gx = [Float](repeating: 0, count: x.count)
        var gGamma = [Float](repeating: 0, count: width), gBeta = [Float](repeating: 0, count: width)
        x.withUnsafeBufferPointer { xs in gamma.withUnsafeBufferPointer { gs in mean.withUnsafeBufferPointer { ms in
            rstd.withUnsafeBufferPointer { rs in g.withUnsafeBufferPointer { gos in
                gx.withUnsafeMutableBufferPointer { gxs in gGamma.withUnsafeMutableBufferPointer { ggs in gBeta.withUnsafeMutableBufferPointer {
                    LayerNorm.backward(xs, gamma: gs, mean: ms, inverseStd: rs, gradOutput: gos, rows: rows, width: width,
                                       gradInput: gxs, gradGamma: ggs, gradBeta: $0)
                } } }
            } }
        } } }
        assertClose(gx, numericalGradient(of: { self.run($0, gamma, beta, rows, width).0 }, at: x, weights: g),
                    absolute: 2e-3, relative: 1e-2, "input")
        assertClose(gGamma, numericalGradient(of: { self.run(x, $0, beta, rows, width).0 }, at: gamma, weights: g),
                    absolute: 2e-3, relative: 1e-2, "gamma")
        assertClose(gBeta, numericalGradient(of: { self.run(x, gamma, $0, rows, width).0 }, at: beta, weights: g),
                    absolute: 2e-3, relative: 1e-2, "beta")
    }
}
