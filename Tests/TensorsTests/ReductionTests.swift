import Tensors
import XCTest

final class ReductionTests: XCTestCase {
    func testTotalSumOnAwkwardLengths() {
        for n in awkwardLengths {
            let x = randomArray(n, seed: UInt64(n + 100))
            let expected = x.reduce(0.0) { $0 + Double($1) }
            XCTAssertEqual(Double(Tensor(shape: [n], scalars: x).sum()), expected, accuracy: 1e-5 * Double(max(n, 1)), "n=\(n)")
        }
        XCTAssertEqual(Tensor(zeros: [0]).mean(), 0)
    }

    func testSumIsMoreAccurateThanASequentialLoop() {
        // 1e6 copies of 0.1: a sequential Float loop drifts by ~1 %; the blocked sum stays close.
        let x = Tensor(repeating: 0.1, shape: [1_000_000])
        XCTAssertEqual(Double(x.sum()), 100_000, accuracy: 10)
    }

    func testAxisSumsAndMeans() {
        let shape = [3, 4, 5]
        let x = Tensor(shape: shape, scalars: randomArray(60, seed: 1))
        for axis in 0..<3 {
            let (outer, length, inner) = Reduction.split(shape, axis: axis)
            var expected = [Float](repeating: 0, count: outer * inner)
            for o in 0..<outer { for k in 0..<length { for i in 0..<inner {
                expected[o * inner + i] += x.scalars[(o * length + k) * inner + i]
            } } }
            let sum = x.sum(alongAxis: axis)
            var expectedShape = shape
            expectedShape.remove(at: axis)
            XCTAssertEqual(sum.shape, expectedShape)
            assertClose(sum.scalars, expected, absolute: 1e-5, relative: 1e-6, "sum axis \(axis)")
            assertClose(x.mean(alongAxis: axis, keepingAxis: true).scalars, expected.map { $0 / Float(length) },
                        absolute: 1e-6, relative: 1e-6, "mean axis \(axis)")
        }
        XCTAssertEqual(x.sum(alongAxes: [0, 2]).shape, [4])
        assertClose(x.sum(alongAxes: [0, 2]).scalars, x.sum(alongAxis: 2).sum(alongAxis: 0).scalars, absolute: 1e-6)
    }

    func testBackwardMatchesFiniteDifferences() {
        for (outer, length, inner, mean) in [(2, 5, 3, false), (3, 7, 1, true), (1, 4, 6, true)] {
            let x = randomArray(outer * length * inner, seed: 2)
            let g = randomArray(outer * inner, seed: 3)
            let forward: ([Float]) -> [Float] = { input in
                var out = [Float](repeating: 0, count: outer * inner)
                input.withUnsafeBufferPointer { xs in out.withUnsafeMutableBufferPointer {
                    Reduction.sum(xs, outer: outer, length: length, inner: inner, into: $0, mean: mean)
                } }
                return out
            }
            var gx = [Float](repeating: 0, count: x.count)
            g.withUnsafeBufferPointer { gs in gx.withUnsafeMutableBufferPointer {
                Reduction.sumBackward(gs, outer: outer, length: length, inner: inner, into: $0, mean: mean)
            } }
            assertClose(gx, numericalGradient(of: forward, at: x, weights: g), absolute: 1e-3, relative: 1e-3)
        }
    }
}

final class ElementwiseTests: XCTestCase {
    func testArithmeticOnAwkwardLengths() {
        for n in awkwardLengths {
            let a = randomArray(n, seed: 1), b = randomArray(n, seed: 2)
            let ta = Tensor(shape: [n], scalars: a), tb = Tensor(shape: [n], scalars: b)
            XCTAssertEqual((ta + tb).scalars, zip(a, b).map(+))
            XCTAssertEqual((ta - tb).scalars, zip(a, b).map(-))
            XCTAssertEqual((ta * tb).scalars, zip(a, b).map(*))
            XCTAssertEqual((ta * 2.5).scalars, a.map { $0 * 2.5 })
            var y = b
            a.withUnsafeBufferPointer { xs in y.withUnsafeMutableBufferPointer { Elementwise.accumulate(xs, scaledBy: -3, into: $0) } }
            assertClose(y, zip(a, b).map { $1 + -3 * $0 }, absolute: 1e-6, relative: 1e-6)
        }
    }
}
