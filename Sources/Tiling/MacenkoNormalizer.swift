import Foundation
import Slides

/// Macenko normalization. Optical density OD = −ln((I + 1) / I₀) per channel; pixels with any
/// OD < β are background. The plane of the two largest principal axes of the tissue OD holds the
/// stains; the extreme angles (α-th and (100−α)-th percentiles) of the pixels projected on it give
/// the haematoxylin and eosin vectors. Concentrations C solve OD = M·C by least squares; they are
/// scaled so their 99th percentiles match the target's, then re-stained with the target matrix:
/// I' = I₀ · exp(−M_target · C').
public struct MacenkoNormalizer: StainNormalizer {
    public static let lightIntensity = 240.0  // I₀
    public static let angularPercentile = 1.0  // α
    public static let backgroundDensity = 0.15  // β
    /// Fewer tissue pixels than this fraction of the tile (or than 64) leave the estimate undefined.
    public static let minimumTissueFraction = 0.02

    public let target: StainTarget
    private let matrix: [[Double]]  // 2 stains × 3 channels
    private let maximum: [Double]

    public init(fittedTo image: RGBImage) throws {
        guard let estimate = Self.estimate(image) else {
            throw StainError("the Macenko target image has too little stained tissue to estimate stain vectors; choose an H&E image with tissue")
        }
        try self.init(target: StainTarget(method: .macenko, stainMatrix: estimate.matrix, maximumConcentrations: estimate.maximum))
    }

    public init(target: StainTarget) throws {
        guard target.method == .macenko, let m = target.stainMatrix, m.count == 2, m.allSatisfy({ $0.count == 3 }),
              let c = target.maximumConcentrations, c.count == 2, c.allSatisfy({ $0 > 0 }) else {
            throw StainError("a Macenko target needs a 2×3 stain matrix and two positive maximum concentrations")
        }
        self.target = target
        (matrix, maximum) = (m, c)
    }

    public func normalize(_ tile: RGBImage) -> StainResult {
        guard let estimate = Self.estimate(tile) else {
            return .passedThrough(tile, reason: "too little stained tissue for a Macenko estimate")
        }
        let scale = [maximum[0] / estimate.maximum[0], maximum[1] / estimate.maximum[1]]
        let n = tile.width * tile.height
        var out = [UInt8](repeating: 0, count: n * 3)
        let c0 = estimate.concentrations[0], c1 = estimate.concentrations[1]
        let io = Self.lightIntensity
        for i in 0..<n {
            let h = c0[i] * scale[0], e = c1[i] * scale[1]
            for channel in 0..<3 {
                let value = io * exp(-(matrix[0][channel] * h + matrix[1][channel] * e))
                out[3 * i + channel] = value >= 255 ? 255 : (value > 0 ? UInt8(value) : 0)
            }
        }
        return .normalized(RGBImage(width: tile.width, height: tile.height, pixels: out))
    }

    struct Estimate {
        var matrix: [[Double]]
        var concentrations: [[Double]]  // 2 × pixels
        var maximum: [Double]
    }

    /// The stain matrix, every pixel's concentrations and their 99th percentiles; nil when the
    /// tile has too little tissue or the estimate degenerates.
    static func estimate(_ image: RGBImage) -> Estimate? {
        let n = image.width * image.height
        let odTable = (0..<256).map { -log((Double($0) + 1) / lightIntensity) }
        // Mean and covariance of the tissue pixels' OD (the tissue pixels themselves are not kept).
        var count = 0
        var sum = [0.0, 0.0, 0.0], cross = [[Double]](repeating: [0, 0, 0], count: 3)
        image.pixels.withUnsafeBufferPointer { p in
            for i in 0..<n {
                let od = (odTable[Int(p[3 * i])], odTable[Int(p[3 * i + 1])], odTable[Int(p[3 * i + 2])])
                guard od.0 >= backgroundDensity && od.1 >= backgroundDensity && od.2 >= backgroundDensity else { continue }
                count += 1
                sum[0] += od.0; sum[1] += od.1; sum[2] += od.2
                cross[0][0] += od.0 * od.0; cross[0][1] += od.0 * od.1; cross[0][2] += od.0 * od.2
                cross[1][1] += od.1 * od.1; cross[1][2] += od.1 * od.2; cross[2][2] += od.2 * od.2
            }
        }
        guard count >= max(64, Int(minimumTissueFraction * Double(n))) else { return nil }
        let mean = sum.map { $0 / Double(count) }
        var covariance = [[Double]](repeating: [0, 0, 0], count: 3)
        for r in 0..<3 {
            for c in r..<3 {
                covariance[r][c] = (cross[r][c] - Double(count) * mean[r] * mean[c]) / Double(count - 1)
                covariance[c][r] = covariance[r][c]
            }
        }
        let (_, vectors) = StainMath.symmetricEigen(covariance)
        let e1 = [vectors[0][1], vectors[1][1], vectors[2][1]], e2 = [vectors[0][2], vectors[1][2], vectors[2][2]]
        var angles = [Double]()
        angles.reserveCapacity(count)
        image.pixels.withUnsafeBufferPointer { p in
            for i in 0..<n {
                let od = [odTable[Int(p[3 * i])], odTable[Int(p[3 * i + 1])], odTable[Int(p[3 * i + 2])]]
                guard od.allSatisfy({ $0 >= backgroundDensity }) else { continue }
                let t0 = od[0] * e1[0] + od[1] * e1[1] + od[2] * e1[2]
                let t1 = od[0] * e2[0] + od[1] * e2[1] + od[2] * e2[2]
                angles.append(atan2(t1, t0))
            }
        }
        let minimum = StainMath.percentile(&angles, angularPercentile)
        let maximumAngle = StainMath.percentile(&angles, 100 - angularPercentile)
        let vMin = (0..<3).map { e1[$0] * cos(minimum) + e2[$0] * sin(minimum) }
        let vMax = (0..<3).map { e1[$0] * cos(maximumAngle) + e2[$0] * sin(maximumAngle) }
        // Haematoxylin first: the vector with the larger red optical density.
        let matrix = vMin[0] > vMax[0] ? [vMin, vMax] : [vMax, vMin]

        // Least squares C = (MᵀM)⁻¹Mᵀ·OD for every pixel (M = matrixᵀ, 3×2).
        let g00 = dot(matrix[0], matrix[0]), g01 = dot(matrix[0], matrix[1]), g11 = dot(matrix[1], matrix[1])
        let det = g00 * g11 - g01 * g01
        guard det.isFinite && abs(det) > 1e-12 else { return nil }
        let p0 = (0..<3).map { (g11 * matrix[0][$0] - g01 * matrix[1][$0]) / det }
        let p1 = (0..<3).map { (g00 * matrix[1][$0] - g01 * matrix[0][$0]) / det }
        var c0 = [Double](repeating: 0, count: n), c1 = [Double](repeating: 0, count: n)
        image.pixels.withUnsafeBufferPointer { p in
            for i in 0..<n {
                let od0 = odTable[Int(p[3 * i])], od1 = odTable[Int(p[3 * i + 1])], od2 = odTable[Int(p[3 * i + 2])]
                c0[i] = p0[0] * od0 + p0[1] * od1 + p0[2] * od2
                c1[i] = p1[0] * od0 + p1[1] * od1 + p1[2] * od2
            }
        }
        var s0 = c0, s1 = c1
        let maximum = [StainMath.percentile(&s0, 99), StainMath.percentile(&s1, 99)]
        guard maximum.allSatisfy({ $0.isFinite && $0 > 1e-6 }), matrix.joined().allSatisfy(\.isFinite) else { return nil }
        return Estimate(matrix: matrix, concentrations: [c0, c1], maximum: maximum)
    }

    static func dot(_ a: [Double], _ b: [Double]) -> Double { a[0] * b[0] + a[1] * b[1] + a[2] * b[2] }
}
