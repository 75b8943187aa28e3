import Foundation
import Slides

/// Reinhard normalization: match each L*a*b* channel's mean and standard deviation to the
/// target's, x' = (x − μ) / σ · σ_target + μ_target.
public struct ReinhardNormalizer: StainNormalizer {
    public let target: StainTarget
    private let means: [Double], deviations: [Double]

    public init(fittedTo image: RGBImage) throws {
        let lab = Lab(image)
        guard lab.deviations.allSatisfy({ $0 > 1e-6 }) else {
            throw StainError(.unusableTarget, "", "the Reinhard target image is uniform (no colour variation to learn from); choose an H&E image with tissue")
        }
        try self.init(target: StainTarget(method: .reinhard, labMeans: lab.means, labStandardDeviations: lab.deviations))
    }

    public init(target: StainTarget) throws {
        guard target.method == .reinhard, let m = target.labMeans, let s = target.labStandardDeviations, m.count == 3, s.count == 3 else {
            throw StainError(.unreadableTarget, "", "a Reinhard target needs three LAB means and standard deviations")
        }
        self.target = target
        (means, deviations) = (m, s)
    }

    public func normalize(_ tile: RGBImage) -> StainResult {
        let n = tile.width * tile.height
        guard n > 0 else { return .passedThrough(tile, reason: "empty tile") }
        var lab = Lab(tile)
        guard lab.deviations.allSatisfy({ $0 > 1e-6 }) else {
            return .passedThrough(tile, reason: "uniform tile (no colour variation)")
        }
        // Per channel: x' = x · scale + shift, in place on the planes.
        for c in 0..<3 {
            let scale = Float(deviations[c] / lab.deviations[c]), shift = Float(means[c]) - Float(lab.means[c]) * scale
            lab.planes.withUnsafeMutableBufferPointer { p in
                for i in (c * n)..<((c + 1) * n) { p[i] = p[i] * scale + shift }
            }
        }
        var out = [UInt8](repeating: 0, count: n * 3)
        lab.planes.withUnsafeBufferPointer { p in
            out.withUnsafeMutableBufferPointer { dst in
                LabColor.convertBack(l: p.baseAddress!, a: p.baseAddress! + n, b: p.baseAddress! + 2 * n, count: n, into: dst)
            }
        }
        return .normalized(RGBImage(width: tile.width, height: tile.height, pixels: out))
    }

    /// An image in L*a*b* (three planes) with each channel's mean and (population) deviation.
    struct Lab {
        var planes: [Float]
        let means: [Double]
        let deviations: [Double]

        init(_ image: RGBImage) {
            let n = image.width * image.height
            var planes = [Float](repeating: 0, count: 3 * n)
            image.pixels.withUnsafeBufferPointer { src in
                planes.withUnsafeMutableBufferPointer { p in
                    if n > 0 { LabColor.convert(src, count: n, l: p.baseAddress!, a: p.baseAddress! + n, b: p.baseAddress! + 2 * n) }
                }
            }
            var means = [Double](), deviations = [Double]()
            planes.withUnsafeBufferPointer { p in
                for c in 0..<3 {
                    // Blocks of Float sums, accumulated in Double.
                    var sum = 0.0, squares = 0.0
                    var i = c * n
                    while i < (c + 1) * n {
                        let end = min((c + 1) * n, i + 1024)
                        var s: Float = 0, q: Float = 0
                        for j in i..<end { s += p[j]; q += p[j] * p[j] }
                        sum += Double(s); squares += Double(q)
                        i = end
                    }
                    let mean = n > 0 ? sum / Double(n) : 0
                    means.append(mean)
                    deviations.append(n > 0 ? max(0, squares / Double(n) - mean * mean).squareRoot() : 0)
                }
            }
            self.planes = planes
            self.means = means
            self.deviations = deviations
        }
    }
}
