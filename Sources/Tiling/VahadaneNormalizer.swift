import Foundation
import Slides

/// Vahadane normalization (structure-preserving colour normalization with sparse stain
/// separation). Tissue pixels (L* < 80) in optical density OD = −ln(max(I, 1) / 255) are
/// factorised by sparse non-negative dictionary learning,
///     min over W ≥ 0 (‖wⱼ‖ ≤ 1), H ≥ 0 of  ½‖OD − W·H‖² + λ‖H‖₁   (λ = 0.1, two stains),
/// alternating an exact non-negative lasso for the concentrations H with block-coordinate descent
/// on the stains W (Mairal et al.'s dictionary update). Concentrations of every pixel then come
/// from the non-negative lasso with λ = 0.01; they are scaled so their 99th percentiles match
/// the target's and re-stained with the target's matrix: I' = 255 · exp(−W_target · H').
public struct VahadaneNormalizer: StainNormalizer {
    public static let luminosityThreshold: Float = 80  // L* below this is tissue
    public static let dictionaryLambda = 0.1
    public static let concentrationLambda = 0.01
    public static let iterations = 60
    /// Fewer tissue pixels than this fraction of the tile (or than 64) leave the estimate undefined.
    public static let minimumTissueFraction = 0.02
    /// At most this many tissue pixels (evenly spaced) enter the dictionary learning.
    public static let maximumSamples = 20_000

    public let target: StainTarget
    private let matrix: [[Double]]
    private let maximum: [Double]

    public init(fittedTo image: RGBImage) throws {
        guard let m = Self.stainMatrix(image), let c = Self.maximumConcentrations(image, m) else {
            throw StainError(.unusableTarget, "", "the Vahadane target image has too little tissue to learn stains from; choose an H&E image with tissue")
        }
        try self.init(target: StainTarget(method: .vahadane, stainMatrix: m, maximumConcentrations: c.maximum))
    }

    public init(target: StainTarget) throws {
        guard target.method == .vahadane, let m = target.stainMatrix, m.count == 2, m.allSatisfy({ $0.count == 3 }),
              let c = target.maximumConcentrations, c.count == 2, c.allSatisfy({ $0 > 0 }) else {
            throw StainError(.unreadableTarget, "", "a Vahadane target needs a 2×3 stain matrix and two positive maximum concentrations")
        }
        self.target = target
        (matrix, maximum) = (m, c)
    }

    public func normalize(_ tile: RGBImage) -> StainResult {
        guard let source = Self.stainMatrix(tile), let found = Self.maximumConcentrations(tile, source) else {
            return .passedThrough(tile, reason: "too little tissue for a Vahadane estimate")
        }
        let scale = [maximum[0] / found.maximum[0], maximum[1] / found.maximum[1]]
        let n = tile.width * tile.height
        var out = [UInt8](repeating: 0, count: n * 3)
        for i in 0..<n {
            let h = found.concentrations[2 * i] * scale[0], e = found.concentrations[2 * i + 1] * scale[1]
            for channel in 0..<3 {
                let value = 255 * exp(-(matrix[0][channel] * h + matrix[1][channel] * e))
                out[3 * i + channel] = value >= 255 ? 255 : UInt8(max(0, value))
            }
        }
        return .normalized(RGBImage(width: tile.width, height: tile.height, pixels: out))
    }

    static let odTable: [Double] = (0..<256).map { max(-log(Double(max($0, 1)) / 255), 1e-6) }

    /// The learned 2×3 stain matrix (haematoxylin row first, rows of unit length), or nil.
    static func stainMatrix(_ image: RGBImage) -> [[Double]]? {
        let n = image.width * image.height
        var samples: [Double] = []  // 3 per tissue pixel
        var tissue = 0
        image.pixels.withUnsafeBufferPointer { p in
            let isTissue = (0..<n).map { LabColor.lightness(p[3 * $0], p[3 * $0 + 1], p[3 * $0 + 2]) < luminosityThreshold }
            tissue = isTissue.filter { $0 }.count
            let step = max(1, tissue / maximumSamples)
            var seen = 0
            samples.reserveCapacity(3 * min(tissue, maximumSamples + 1))
            for i in 0..<n where isTissue[i] {
                if seen % step == 0 {
                    samples += [odTable[Int(p[3 * i])], odTable[Int(p[3 * i + 1])], odTable[Int(p[3 * i + 2])]]
                }
                seen += 1
            }
        }
        guard tissue >= max(64, Int(minimumTissueFraction * Double(n))) else { return nil }
        guard var w = learnDictionary(samples) else { return nil }
        if w[0][0] < w[1][0] { w.swapAt(0, 1) }
        let rows = w.map { row -> [Double] in
            let norm = (row[0] * row[0] + row[1] * row[1] + row[2] * row[2]).squareRoot()
            return row.map { $0 / norm }
        }
        return rows.joined().allSatisfy(\.isFinite) ? rows : nil
    }

    /// Sparse non-negative dictionary learning with two atoms on OD samples (3 per pixel).
    /// Start: the sample with the largest OD, and the sample least aligned with it (weighted by
    /// its density); then alternate the exact lasso step and the dictionary update.
    static func learnDictionary(_ x: [Double]) -> [[Double]]? {
        let m = x.count / 3
        guard m >= 2 else { return nil }
        func norm(_ i: Int) -> Double { (x[3 * i] * x[3 * i] + x[3 * i + 1] * x[3 * i + 1] + x[3 * i + 2] * x[3 * i + 2]).squareRoot() }
        let first = (0..<m).max { norm($0) < norm($1) }!
        let d0 = (0..<3).map { x[3 * first + $0] / norm(first) }
        let second = (0..<m).max { a, b in
            func score(_ i: Int) -> Double {
                let n = norm(i)
                guard n > 0 else { return 0 }
                let cosine = (x[3 * i] * d0[0] + x[3 * i + 1] * d0[1] + x[3 * i + 2] * d0[2]) / n
                return n * (1 - cosine)
            }
            return score(a) < score(b)
        }!
        guard norm(second) > 0 else { return nil }
        var w = [d0, (0..<3).map { x[3 * second + $0] / norm(second) }]  // atoms as rows
        var codes = [Double](repeating: 0, count: 2 * m)
        for _ in 0..<iterations {
            // Concentrations for the current stains.
            let (g00, g01, g11) = StainMath.gram(w)
            for i in 0..<m {
                let b0 = w[0][0] * x[3 * i] + w[0][1] * x[3 * i + 1] + w[0][2] * x[3 * i + 2]
                let b1 = w[1][0] * x[3 * i] + w[1][1] * x[3 * i + 1] + w[1][2] * x[3 * i + 2]
                let (a0, a1) = StainMath.nonNegativeLasso2(g00: g00, g01: g01, g11: g11, b0: b0, b1: b1, lambda: dictionaryLambda)
                codes[2 * i] = a0; codes[2 * i + 1] = a1
            }
            // Stains for the current concentrations: A = Σ hhᵀ, B = Σ x hᵀ, then per atom
            // u = (bⱼ − W aⱼ) / Aⱼⱼ + wⱼ, projected on u ≥ 0 and ‖u‖ ≤ 1.
            var a = [[0.0, 0.0], [0.0, 0.0]], b = [[Double]](repeating: [0, 0, 0], count: 2)
            for i in 0..<m {
                let h0 = codes[2 * i], h1 = codes[2 * i + 1]
                a[0][0] += h0 * h0; a[0][1] += h0 * h1; a[1][1] += h1 * h1
                for c in 0..<3 { b[0][c] += x[3 * i + c] * h0; b[1][c] += x[3 * i + c] * h1 }
            }
            a[1][0] = a[0][1]
            for j in 0..<2 where a[j][j] > 1e-12 {
                var u = (0..<3).map { c in (b[j][c] - (w[0][c] * a[0][j] + w[1][c] * a[1][j])) / a[j][j] + w[j][c] }
                u = u.map { max(0, $0) }
                let length = (u[0] * u[0] + u[1] * u[1] + u[2] * u[2]).squareRoot()
                w[j] = u.map { $0 / max(length, 1) }
            }
        }
        return w.allSatisfy({ $0.contains { $0 > 0 } }) ? w : nil
    }

    /// Every pixel's concentrations (interleaved H, E) by the non-negative lasso, and their
    /// 99th percentiles; nil if a stain is absent.
    static func maximumConcentrations(_ image: RGBImage, _ w: [[Double]]) -> (concentrations: [Double], maximum: [Double])? {
        let n = image.width * image.height
        let (g00, g01, g11) = StainMath.gram(w)
        var codes = [Double](repeating: 0, count: 2 * n)
        image.pixels.withUnsafeBufferPointer { p in
            for i in 0..<n {
                let o = (odTable[Int(p[3 * i])], odTable[Int(p[3 * i + 1])], odTable[Int(p[3 * i + 2])])
                let b0 = w[0][0] * o.0 + w[0][1] * o.1 + w[0][2] * o.2
                let b1 = w[1][0] * o.0 + w[1][1] * o.1 + w[1][2] * o.2
                let (a0, a1) = StainMath.nonNegativeLasso2(g00: g00, g01: g01, g11: g11, b0: b0, b1: b1, lambda: concentrationLambda)
                codes[2 * i] = a0; codes[2 * i + 1] = a1
            }
        }
        var h = stride(from: 0, to: 2 * n, by: 2).map { codes[$0] }
        var e = stride(from: 1, to: 2 * n, by: 2).map { codes[$0] }
        let maximum = [StainMath.percentile(&h, 99), StainMath.percentile(&e, 99)]
        guard maximum.allSatisfy({ $0.isFinite && $0 > 1e-6 }) else { return nil }
        return (codes, maximum)
    }
}
