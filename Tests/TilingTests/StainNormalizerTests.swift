import Foundation
import Slides
import XCTest
import Tiling

/// Stain normalizers against torchstain (Reinhard, Macenko) and staintools + SPAMS (Vahadane) on
/// real H&E crops; fixtures from scripts/reference/make_stain_fixtures.py.
final class StainNormalizerTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/stain")

    struct Fitted: Decodable {
        struct Stats: Decodable { let means: [Double]; let stds: [Double] }
        struct Matrix: Decodable { let stain_matrix: [[Double]]; let max_concentrations: [Double] }
        let reinhard: Stats
        let macenko: Matrix
        let vahadane: Matrix
    }

    func image(_ name: String) throws -> RGBImage { try ImageFile.read(Self.fixtures.appendingPathComponent(name).path) }
    func fitted() throws -> Fitted { try JSONDecoder().decode(Fitted.self, from: Data(contentsOf: Self.fixtures.appendingPathComponent("fitted.json"))) }

    /// Mean absolute difference in 8-bit units.
    func meanAbsoluteDifference(_ a: RGBImage, _ b: RGBImage) -> Double {
        XCTAssertEqual(a.pixels.count, b.pixels.count)
        return zip(a.pixels, b.pixels).reduce(0.0) { $0 + abs(Double($1.0) - Double($1.1)) } / Double(a.pixels.count)
    }

    func testReinhardMatchesTorchstainWithinOneLevel() throws {
        let normalizer = try ReinhardNormalizer(fittedTo: image("target.png"))
        let reference = try fitted().reinhard
        for c in 0..<3 {
            XCTAssertEqual(normalizer.target.labMeans![c], reference.means[c], accuracy: 1e-3)
            XCTAssertEqual(normalizer.target.labStandardDeviations![c], reference.stds[c], accuracy: 1e-3)
        }
        for source in ["nest", "stroma"] {
            let result = normalizer.normalize(try image("\(source).png"))
            guard case .normalized(let out) = result else { return XCTFail("\(source) passed through") }
            let mad = meanAbsoluteDifference(out, try image("\(source).reinhard.png"))
            print("Reinhard \(source): mean |Δ| = \(String(format: "%.4f", mad)) / 255")
            XCTAssertLessThanOrEqual(mad, 1.0, "Reinhard must match torchstain to ≤ 1/255")
        }
    }

    func testMacenkoMatchesTorchstain() throws {
        let normalizer = try MacenkoNormalizer(fittedTo: image("target.png"))
        let reference = try fitted().macenko
        for s in 0..<2 {
            for c in 0..<3 { XCTAssertEqual(normalizer.target.stainMatrix![s][c], reference.stain_matrix[s][c], accuracy: 1e-6) }
            XCTAssertEqual(normalizer.target.maximumConcentrations![s], reference.max_concentrations[s], accuracy: 1e-6)
        }
        for source in ["nest", "stroma"] {
            let out = normalizer.normalize(try image("\(source).png")).image
            let mad = meanAbsoluteDifference(out, try image("\(source).macenko.png"))
            print("Macenko \(source): mean |Δ| = \(String(format: "%.4f", mad)) / 255")
            XCTAssertLessThanOrEqual(mad, 0.01)
        }
    }

    func testVahadaneIsCloseToStaintoolsWithSPAMS() throws {
        let normalizer = try VahadaneNormalizer(fittedTo: image("target.png"))
        let reference = try fitted().vahadane
        for s in 0..<2 {
            let ours = normalizer.target.stainMatrix![s], theirs = reference.stain_matrix[s]
            let cosine = zip(ours, theirs).reduce(0) { $0 + $1.0 * $1.1 }
            print("Vahadane stain \(s): cosine to SPAMS = \(String(format: "%.5f", cosine))")
            XCTAssertGreaterThan(cosine, 0.995)
        }
        for source in ["nest", "stroma"] {
            let out = normalizer.normalize(try image("\(source).png")).image
            let mad = meanAbsoluteDifference(out, try image("\(source).vahadane.png"))
            print("Vahadane \(source): mean |Δ| = \(String(format: "%.4f", mad)) / 255")
            XCTAssertLessThanOrEqual(mad, 0.5)
        }
    }

    func testBackgroundAndUniformTilesPassThroughWithoutNaN() throws {
        let target = try image("target.png")
        let white = RGBImage(width: 64, height: 64, filling: (245, 245, 245))
        var speckled = white  // a few stained pixels on glass: too little tissue to estimate from
        for i in stride(from: 0, to: 64 * 64, by: 97) { speckled.pixels[3 * i] = 120; speckled.pixels[3 * i + 1] = 60; speckled.pixels[3 * i + 2] = 140 }
        for method in StainMethod.allCases {
            let normalizer = try StainNormalization.fit(method, to: target)
            for tile in [white, RGBImage(width: 0, height: 0, pixels: [])] + (method == .reinhard ? [] : [speckled]) {
                guard case .passedThrough(let out, let reason) = normalizer.normalize(tile) else {
                    return XCTFail("\(method): a background tile must pass through")
                }
                XCTAssertEqual(out, tile)
                XCTAssertFalse(reason.isEmpty)
            }
            XCTAssertThrowsError(try StainNormalization.fit(method, to: white)) { error in
                XCTAssertTrue(String(describing: error).contains("target"), "\(error)")
            }
        }
    }

    func testSavedTargetsGiveIdenticalOutput() throws {
        let target = try image("target.png"), tile = try image("nest.png")
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("stain-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        for method in StainMethod.allCases {
            let fitted = try StainNormalization.fit(method, to: target)
            let url = folder.appendingPathComponent("\(method).json")
            try fitted.target.save(to: url)
            let loaded = try StainNormalization.normalizer(for: StainTarget.load(from: url))
            XCTAssertEqual(loaded.target, fitted.target)
            XCTAssertEqual(loaded.normalize(tile).image, fitted.normalize(tile).image)
        }
        try Data("{}".utf8).write(to: folder.appendingPathComponent("bad.json"))
        XCTAssertThrowsError(try StainTarget.load(from: folder.appendingPathComponent("bad.json")))
    }

    func testNonNegativeLassoAgreesWithBruteForce() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let d = (0..<6).map { _ in Double.random(in: 0...1, using: &generator) }
            let x = (0..<3).map { _ in Double.random(in: -0.2...2, using: &generator) }
            let g00 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2], g11 = d[3] * d[3] + d[4] * d[4] + d[5] * d[5]
            let g01 = d[0] * d[3] + d[1] * d[4] + d[2] * d[5]
            let b0 = d[0] * x[0] + d[1] * x[1] + d[2] * x[2], b1 = d[3] * x[0] + d[4] * x[1] + d[5] * x[2]
            let lambda = 0.1
            func f(_ a: Double, _ b: Double) -> Double { 0.5 * (g00 * a * a + 2 * g01 * a * b + g11 * b * b) - b0 * a - b1 * b + lambda * (a + b) }
            let (a0, a1) = StainMath.nonNegativeLasso2(g00: g00, g01: g01, g11: g11, b0: b0, b1: b1, lambda: lambda)
            XCTAssertGreaterThanOrEqual(min(a0, a1), 0)
            var best = Double.infinity
            for i in 0...200 { for j in 0...200 { best = min(best, f(Double(i) * 0.02, Double(j) * 0.02)) } }
            XCTAssertLessThanOrEqual(f(a0, a1), best + 1e-9)
        }
    }
}

final class PercentileTests: XCTestCase {
    /// The selection (with its shortcut for the tails) against sorting, numpy's linear interpolation.
    func testPercentilesMatchSorting() {
        var generator = SystemRandomNumberGenerator()
        for count in [1, 2, 7, 100, 5000, 20_000, 50_176] {
            for ties in [false, true] {
                let values = (0..<count).map { _ in ties ? Double(Int.random(in: 0..<50, using: &generator)) : Double.random(in: -3...3, using: &generator) }
                let sorted = values.sorted()
                for p in [0, 0.5, 1, 2.5, 50, 97.5, 99, 99.9, 100] {
                    let position = p / 100 * Double(count - 1)
                    let low = Int(position.rounded(.down)), fraction = position - Double(low)
                    let expected = low + 1 < count ? sorted[low] + fraction * (sorted[low + 1] - sorted[low]) : sorted[low]
                    var copy = values
                    XCTAssertEqual(StainMath.percentile(&copy, p), expected, accuracy: 1e-12, "n \(count) p \(p) ties \(ties)")
                }
            }
        }
    }
}

