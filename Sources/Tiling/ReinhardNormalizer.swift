import Foundation
import Slides

/// Reinhard normalization: match each L*a*b* channel's mean and standard deviation to the
/// target's, x' = (x − μ) / σ · σ_target + μ_target.
public struct ReinhardNormalizer: StainNormalizer {
    public let target: StainTarget
    private let means: [Double], deviations: [Double]

    public init(fittedTo image: RGBImage) throws {
        guard let stats = Self.statistics(image), stats.deviations.allSatisfy({ $0 > 1e-6 }) else {
            throw StainError("the Reinhard target image is uniform (no colour variation to learn from); choose an H&E image with tissue")
        }
        try self.init(target: StainTarget(method: .reinhard, labMeans: stats.means, labStandardDeviations: stats.deviations))
    }

    public init(target: StainTarget) throws {
        guard target.method == .reinhard, let m = target.labMeans, let s = target.labStandardDeviations, m.count == 3, s.count == 3 else {
            throw StainError("a Reinhard target needs three LAB means and standard deviations")
        }
        self.target = target
        (means, deviations) = (m, s)
    }

    public func normalize(_ tile: RGBImage) -> StainResult {
        let n = tile.width * tile.height
        guard n > 0, let stats = Self.statistics(tile), stats.deviations.allSatisfy({ $0 > 1e-6 }) else {
            return .passedThrough(tile, reason: "uniform tile (no colour variation)")
        }
        // Per channel: x' = x · scale + shift.
        let scale = (0..<3).map { deviations[$0] / stats.deviations[$0] }
        let shift = (0..<3).map { means[$0] - stats.means[$0] * scale[$0] }
        var out = [UInt8](repeating: 0, count: n * 3)
        tile.pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for i in 0..<n {
                    let (l, a, b) = LabColor.lab(src[3 * i], src[3 * i + 1], src[3 * i + 2])
                    let rgb = LabColor.rgb(Double(l) * scale[0] + shift[0], Double(a) * scale[1] + shift[1], Double(b) * scale[2] + shift[2])
                    dst[3 * i] = rgb.0; dst[3 * i + 1] = rgb.1; dst[3 * i + 2] = rgb.2
                }
            }
        }
        return .normalized(RGBImage(width: tile.width, height: tile.height, pixels: out))
    }

    /// Means and (population) standard deviations of L*, a*, b* over the image.
    static func statistics(_ image: RGBImage) -> (means: [Double], deviations: [Double])? {
        let n = image.width * image.height
        guard n > 0 else { return nil }
        var sum = [Double](repeating: 0, count: 3), squares = [Double](repeating: 0, count: 3)
        image.pixels.withUnsafeBufferPointer { p in
            // Accumulate in Float blocks, then Double, for speed without losing precision.
            var i = 0
            while i < n {
                let end = min(n, i + 1024)
                var s0: Float = 0, s1: Float = 0, s2: Float = 0, q0: Float = 0, q1: Float = 0, q2: Float = 0
                for j in i..<end {
                    let (l, a, b) = LabColor.lab(p[3 * j], p[3 * j + 1], p[3 * j + 2])
                    s0 += l; s1 += a; s2 += b
                    q0 += l * l; q1 += a * a; q2 += b * b
                }
                sum[0] += Double(s0); sum[1] += Double(s1); sum[2] += Double(s2)
                squares[0] += Double(q0); squares[1] += Double(q1); squares[2] += Double(q2)
                i = end
            }
        }
        let means = sum.map { $0 / Double(n) }
        let deviations = (0..<3).map { (max(0, squares[$0] / Double(n) - means[$0] * means[$0])).squareRoot() }
        return (means, deviations)
    }
}
