import Foundation
import Slides
import Tensors
import XCTest

enum SlideFixtures {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// A real sample from `make samples`; the tests need them (the test command fetches them).
    static func sample(_ name: String) throws -> String {
        let path = repository.appendingPathComponent("data/samples/\(name)").path
        guard FileManager.default.fileExists(atPath: path) else {
            throw XCTSkip("sample \(name) is missing: run `make samples` (make test does it)")
        }
        return path
    }

    static func fixture(_ name: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/\(name)").path
    }

    /// Peak signal-to-noise ratio of two 8-bit images of the same size, in dB (∞ when equal).
    static func psnr(_ a: [UInt8], _ b: [UInt8]) -> Double {
        precondition(a.count == b.count)
        var total = 0.0
        for (x, y) in zip(a, b) { total += Double(Int(x) - Int(y)) * Double(Int(x) - Int(y)) }
        let mse = total / Double(max(a.count, 1))
        return mse == 0 ? .infinity : 10 * log10(255 * 255 / mse)
    }

    static func bytes(_ tensor: Tensor) -> [UInt8] { tensor.scalars.map { UInt8($0) } }
}
