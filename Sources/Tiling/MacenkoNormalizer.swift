import Foundation
import Slides
import Tensors

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
            throw StainError(.unusableTarget, "", "the Macenko target image has too little stained tissue to estimate stain vectors; choose an H&E image with tissue")
        }
        try self.init(target: StainTarget(method: .macenko, stainMatrix: estimate.matrix, maximumConcentrations: estimate.maximum))
    }

    public init(target: StainTarget) throws {
        guard target.method == .macenko, let m = target.stainMatrix, m.count == 2, m.allSatisfy({ $0.count == 3 }),
              let c = target.maximumConcentrations, c.count == 2, c.allSatisfy({ $0 > 0 }) else {
            throw StainError(.unreadableTarget, "", "a Macenko target needs a 2×3 stain matrix and two positive maximum concentrations")
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
        return .normalized(RGBImage(width: tile.width, height: tile.height,
                                    pixels: Self.restain(estimate.concentrations, scale: scale, matrix: matrix, intensity: Self.lightIntensity, count: n)))
    }

    /// I = I₀ · exp(−M · (C ⊙ scale)) per pixel and channel, truncated to 8 bits; the exponentials
    /// run 16 lanes at a time.
    static func restain(_ concentrations: [[Double]], scale: [Double], matrix: [[Double]], intensity: Double, count n: Int) -> [UInt8] {
        let padded = (3 * n + 15) / 16 * 16
        var arguments = [Float](repeating: 0, count: padded)
        let m = (0..<3).map { (Float(-matrix[0][$0] * scale[0]), Float(-matrix[1][$0] * scale[1])) }
        concentrations[0].withUnsafeBufferPointer { c0 in concentrations[1].withUnsafeBufferPointer { c1 in
            for i in 0..<n {
                let h = Float(c0[i]), e = Float(c1[i])
                arguments[3 * i] = m[0].0 * h + m[0].1 * e
                arguments[3 * i + 1] = m[1].0 * h + m[1].1 * e
                arguments[3 * i + 2] = m[2].0 * h + m[2].1 * e
            }
        } }
        var out = [UInt8](repeating: 0, count: padded)
        let io = Float(intensity)
        arguments.withUnsafeBufferPointer { a in out.withUnsafeMutableBufferPointer { o in
            let raw = UnsafeRawPointer(a.baseAddress!)
            for start in stride(from: 0, to: padded, by: 16) {
                let x = raw.loadUnaligned(fromByteOffset: start * 4, as: VectorMath.Vector.self)
                var v = VectorMath.exp(x) * io
                v.replace(with: 255, where: v .> 255)
                // Truncate, then read the integer from the mantissa of v + 2²³ (exact for 0…255).
                let whole = v.rounded(.towardZero) + 8_388_608
                let bytes = SIMD16<UInt8>(truncatingIfNeeded: unsafeBitCast(whole, to: SIMD16<UInt32>.self))
                UnsafeMutableRawPointer(o.baseAddress! + start).storeBytes(of: bytes, as: SIMD16<UInt8>.self)
            }
        } }
        out.removeLast(padded - 3 * n)
        return out
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
        // Mean and covariance of the tissue pixels' OD (the tissue pixels themselves are not kept).
        var count = 0
        var (m0, m1, m2, c00, c01, c02, c11, c12, c22) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        image.pixels.withUnsafeBufferPointer { p in
            odTable.withUnsafeBufferPointer { od in
                for i in 0..<n {
                    let o0 = od[Int(p[3 * i])], o1 = od[Int(p[3 * i + 1])], o2 = od[Int(p[3 * i + 2])]
                    guard o0 >= backgroundDensity && o1 >= backgroundDensity && o2 >= backgroundDensity else { continue }
                    count += 1
                    m0 += o0; m1 += o1; m2 += o2
                    c00 += o0 * o0; c01 += o0 * o1; c02 += o0 * o2
                    c11 += o1 * o1; c12 += o1 * o2; c22 += o2 * o2
                }
            }
        }
        let sum = [m0, m1, m2], cross = [[c00, c01, c02], [c01, c11, c12], [c02, c12, c22]]
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
        angles.reserveCapacity(count)  // exact: no regrowth
        image.pixels.withUnsafeBufferPointer { p in
            odTable.withUnsafeBufferPointer { od in
                for i in 0..<n {
                    let o0 = od[Int(p[3 * i])], o1 = od[Int(p[3 * i + 1])], o2 = od[Int(p[3 * i + 2])]
                    guard o0 >= backgroundDensity && o1 >= backgroundDensity && o2 >= backgroundDensity else { continue }
                    let t0 = o0 * e1[0] + o1 * e1[1] + o2 * e1[2]
                    let t1 = o0 * e2[0] + o1 * e2[1] + o2 * e2[2]
                    angles.append(pseudoAngle(t0, t1))
                }
            }
        }
        // Percentiles of the pseudo-angles pick the same order statistics as those of the angles;
        // interpolation then happens between the true angles, as numpy does it.
        let minimum = angularPercentile(&angles, angularPercentile)
        let maximumAngle = angularPercentile(&angles, 100 - angularPercentile)
        let vMin = (0..<3).map { e1[$0] * cos(minimum) + e2[$0] * sin(minimum) }
        let vMax = (0..<3).map { e1[$0] * cos(maximumAngle) + e2[$0] * sin(maximumAngle) }
        // Haematoxylin first: the vector with the larger red optical density.
        let matrix = vMin[0] > vMax[0] ? [vMin, vMax] : [vMax, vMin]

        // Least squares C = (MᵀM)⁻¹Mᵀ·OD for every pixel (M = matrixᵀ, 3×2).
        let (g00, g01, g11) = StainMath.gram(matrix)
        let det = g00 * g11 - g01 * g01
        guard det.isFinite && abs(det) > 1e-12 else { return nil }
        let p0 = (0..<3).map { (g11 * matrix[0][$0] - g01 * matrix[1][$0]) / det }
        let p1 = (0..<3).map { (g00 * matrix[1][$0] - g01 * matrix[0][$0]) / det }
        var c0 = [Double](repeating: 0, count: n), c1 = [Double](repeating: 0, count: n)
        let (q00, q01, q02, q10, q11, q12) = (p0[0], p0[1], p0[2], p1[0], p1[1], p1[2])
        image.pixels.withUnsafeBufferPointer { p in odTable.withUnsafeBufferPointer { od in
            c0.withUnsafeMutableBufferPointer { h in c1.withUnsafeMutableBufferPointer { e in
                for i in 0..<n {
                    let o0 = od[Int(p[3 * i])], o1 = od[Int(p[3 * i + 1])], o2 = od[Int(p[3 * i + 2])]
                    h[i] = q00 * o0 + q01 * o1 + q02 * o2
                    e[i] = q10 * o0 + q11 * o1 + q12 * o2
                }
            } }
        } }
        let maximum = [StainMath.percentile(of: c0, 99), StainMath.percentile(of: c1, 99)]
        guard maximum.allSatisfy({ $0.isFinite && $0 > 1e-6 }), matrix.joined().allSatisfy(\.isFinite) else { return nil }
        return Estimate(matrix: matrix, concentrations: [c0, c1], maximum: maximum)
    }

    /// A monotone stand-in for atan2(y, x) on (−π, π], in (−2, 2]: the "diamond angle", cheap
    /// (one division) and exactly invertible.
    @inline(__always)
    static func pseudoAngle(_ x: Double, _ y: Double) -> Double {
        let d = abs(x) + abs(y)
        guard d > 0 else { return 0 }
        // Quadrants I, II: 0 … 2 as the angle goes 0 … π; III, IV: −2 … 0 for −π … 0.
        if y >= 0 { return x >= 0 ? y / d : 1 - x / d }
        return x >= 0 ? y / d : -1 + x / d
    }

    /// The angle of a pseudo-angle (the inverse of `pseudoAngle`).
    static func angle(ofPseudoAngle p: Double) -> Double {
        if p >= 0 && p <= 1 { return atan2(p, 1 - p) }
        if p > 1 { return atan2(2 - p, 1 - p) }  // x = 1 − p < 0, y = 2 − p
        if p >= -1 { return atan2(p, 1 + p) }  // y = p < 0, x = 1 + p ≥ 0
        return atan2(-2 - p, 1 + p)  // x = 1 + p < 0, y = −(2 + p) < 0
    }

    /// numpy's percentile of the angles, computed on pseudo-angles.
    static func angularPercentile(_ pseudo: inout [Double], _ p: Double) -> Double {
        let position = p / 100 * Double(pseudo.count - 1)
        let low = Int(position.rounded(.down)), fraction = position - Double(low)
        let (first, next) = StainMath.orderStatistics(&pseudo, low)
        let a = angle(ofPseudoAngle: first)
        guard fraction > 0, let next else { return a }
        return a + fraction * (angle(ofPseudoAngle: next) - a)
    }

    /// Optical density −ln((I + 1) / I₀) of every 8-bit value.
    static let odTable: [Double] = (0..<256).map { -log((Double($0) + 1) / lightIntensity) }
}
