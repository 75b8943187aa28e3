import Foundation
import Randomness
import Tensors
import XCTest

/// Lengths that exercise the 16-lane loops: empty, shorter than a vector, exact multiples,
/// one over, and long with a ragged tail.
let awkwardLengths = [0, 1, 7, 15, 16, 17, 33, 64, 65, 1_003]

/// Runs a buffer kernel on an array.
func apply(_ x: [Float], _ kernel: (UnsafeBufferPointer<Float>, UnsafeMutableBufferPointer<Float>) -> Void) -> [Float] {
    var out = [Float](repeating: .nan, count: x.count)
    x.withUnsafeBufferPointer { xs in out.withUnsafeMutableBufferPointer { kernel(xs, $0) } }
    return out
}

/// Runs a backward buffer kernel (x, g) → gx on arrays.
func apply(_ x: [Float], _ g: [Float],
           _ kernel: (UnsafeBufferPointer<Float>, UnsafeBufferPointer<Float>, UnsafeMutableBufferPointer<Float>) -> Void) -> [Float] {
    var out = [Float](repeating: .nan, count: x.count)
    x.withUnsafeBufferPointer { xs in g.withUnsafeBufferPointer { gs in out.withUnsafeMutableBufferPointer { kernel(xs, gs, $0) } } }
    return out
}

/// Asserts |actual − expected| ≤ absolute + relative·|expected| element by element, reporting
/// the first offending index.
func assertClose(_ actual: [Float], _ expected: [Float], absolute: Float = 0, relative: Float = 0,
                 _ message: String = "", file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.count, expected.count, "length differs \(message)", file: file, line: line)
    for i in 0..<min(actual.count, expected.count) {
        let bound = absolute + relative * abs(expected[i])
        if !(abs(actual[i] - expected[i]) <= bound) {
            XCTFail("index \(i): got \(actual[i]), expected \(expected[i]) (bound \(bound)) \(message)", file: file, line: line)
            return
        }
    }
}

/// Central finite-difference gradient of L(x) = Σ w ⊙ f(x), evaluated in Double from Float
/// forwards: ∂L/∂xᵢ ≈ (L(x + h·eᵢ) − L(x − h·eᵢ)) / 2h.
func numericalGradient(of f: ([Float]) -> [Float], at x: [Float], weights w: [Float], step h: Float = 1e-2) -> [Float] {
    func loss(_ input: [Float]) -> Double {
        zip(f(input), w).reduce(0) { $0 + Double($1.0) * Double($1.1) }
    }
    var gradient = [Float](repeating: 0, count: x.count)
    for i in x.indices {
        var plus = x, minus = x
        plus[i] += h
        minus[i] -= h
        gradient[i] = Float((loss(plus) - loss(minus)) / (2 * Double(h)))
    }
    return gradient
}

func randomArray(_ count: Int, std: Float = 1, seed: UInt64) -> [Float] {
    var rng = RandomGenerator(seed: seed)
    return (0..<count).map { _ in rng.normal(std: std) }
}

/// Path of a committed fixture file beside the tests.
func fixtureURL(_ name: String) -> URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").appendingPathComponent(name)
}
