import Randomness
import Tensors
import XCTest

final class RandomGeneratorTests: XCTestCase {
    func testSameSeedSameSequence() {
        var a = RandomGenerator(seed: 42), b = RandomGenerator(seed: 42), c = RandomGenerator(seed: 43)
        let sa = (0..<100).map { _ in a.next() }
        XCTAssertEqual(sa, (0..<100).map { _ in b.next() })
        XCTAssertNotEqual(sa, (0..<100).map { _ in c.next() })
    }

    func testStreamsDependOnSeedAndIndexOnly() {
        var parent = RandomGenerator(seed: 7)
        let before = parent.stream(3)
        for _ in 0..<1000 { _ = parent.next() }
        var s1 = before, s2 = parent.stream(3), other = parent.stream(4)
        let first = (0..<50).map { _ in s1.next() }
        XCTAssertEqual(first, (0..<50).map { _ in s2.next() })
        XCTAssertNotEqual(first, (0..<50).map { _ in other.next() })
        var fresh = RandomGenerator(seed: 7)
        XCTAssertNotEqual(first, (0..<50).map { _ in fresh.next() }, "a stream must differ from its parent")
    }

    func testDistributions() {
        var rng = RandomGenerator(seed: 1)
        let n = 200_000
        let u = (0..<n).map { _ in rng.uniform() }
        XCTAssertTrue(u.allSatisfy { $0 >= 0 && $0 < 1 })
        XCTAssertEqual(mean(u), 0.5, accuracy: 0.005)
        XCTAssertEqual(variance(u), 1.0 / 12, accuracy: 0.002)
        let z = (0..<n).map { _ in rng.normal(mean: 2, std: 3) }
        XCTAssertEqual(mean(z), 2, accuracy: 0.03)
        XCTAssertEqual(variance(z), 9, accuracy: 0.15)
        let t = (0..<n).map { _ in rng.truncatedNormal(mean: 0, std: 1, low: -1, high: 1) }
        XCTAssertTrue(t.allSatisfy { $0 >= -1 && $0 <= 1 })
        // Variance of a standard normal truncated to [−1, 1]: 1 − 2φ(1)/(Φ(1) − Φ(−1)) ≈ 0.2911.
        XCTAssertEqual(variance(t), 0.2911, accuracy: 0.005)
    }

    func testIntegersAndPermutations() {
        var rng = RandomGenerator(seed: 5)
        var counts = [Int](repeating: 0, count: 7)
        for _ in 0..<70_000 { counts[rng.integer(below: 7)] += 1 }
        XCTAssertTrue(counts.allSatisfy { abs($0 - 10_000) < 400 }, "\(counts)")
        for n in [0, 1, 2, 10, 1000] {
            XCTAssertEqual(rng.permutation(n).sorted(), Array(0..<n))
        }
        var again = RandomGenerator(seed: 99), once = RandomGenerator(seed: 99)
        XCTAssertEqual(again.permutation(50), once.permutation(50))
    }

    func mean(_ x: [Float]) -> Double { x.reduce(0.0) { $0 + Double($1) } / Double(x.count) }
    func variance(_ x: [Float]) -> Double {
        let m = mean(x)
        return x.reduce(0.0) { $0 + (Double($1) - m) * (Double($1) - m) } / Double(x.count)
    }
}
