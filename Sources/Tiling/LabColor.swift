import Foundation

/// sRGB ↔ CIE L*a*b* (D65 white), as used by Reinhard normalization: L in 0…100, a and b centred
/// on 0. Input and output are 8-bit; the conversion back truncates to 8 bits like an
/// `astype(uint8)` after scaling by 255.
///
/// Speed: 8-bit sRGB linearises through a table; the cube root is a bit-level estimate refined by
/// two Halley steps (relative error < 1e-7, below Float rounding); the way back finds the 8-bit
/// level from linear light by a table of 4096 bins plus at most a few threshold comparisons, with
/// no power function.
enum LabColor {
    /// sRGB → linear RGB for every 8-bit value (exact, so no power function per pixel).
    static let linear: [Float] = (0..<256).map { v in
        let c = Float(v) / 255
        return c > 0.04045 ? powf((c + 0.055) / 1.055, 2.4) : c / 12.92
    }

    /// The linear-light value at which the 8-bit output steps from k−1 to k (k = 1…255), and a
    /// sentinel: the output of v is the number of thresholds ≤ v, i.e. floor(255 · gamma(v)).
    static let outputThresholds: [Float] = (1..<256).map { k in
        let c = Double(k) / 255
        return Float(c > 0.04045 ? pow((c + 0.055) / 1.055, 2.4) : c / 12.92)
    } + [.infinity]

    static let bins = 4096
    /// For each bin [i/bins, (i+1)/bins): the 8-bit level at its start.
    static let binStart: [UInt8] = (0..<bins).map { i in
        let v = Float(i) / Float(bins)
        return UInt8(outputThresholds.prefix(255).filter { $0 <= v }.count)
    }

    static let rgbToXYZ: [Float] = [0.412453, 0.357580, 0.180423,
                                    0.212671, 0.715160, 0.072169,
                                    0.019334, 0.119193, 0.950227]
    static let white: (Float, Float, Float) = (0.95047, 1.0, 1.08883)

    /// The inverse of `rgbToXYZ` (row-major).
    static let xyzToRGB: [Float] = {
        let m = rgbToXYZ.map(Double.init)
        let det = m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6]) + m[2] * (m[3] * m[7] - m[4] * m[6])
        return [
            (m[4] * m[8] - m[5] * m[7]) / det, (m[2] * m[7] - m[1] * m[8]) / det, (m[1] * m[5] - m[2] * m[4]) / det,
            (m[5] * m[6] - m[3] * m[8]) / det, (m[0] * m[8] - m[2] * m[6]) / det, (m[2] * m[3] - m[0] * m[5]) / det,
            (m[3] * m[7] - m[4] * m[6]) / det, (m[1] * m[6] - m[0] * m[7]) / det, (m[0] * m[4] - m[1] * m[3]) / det,
        ].map(Float.init)
    }()

    /// ∛t for t > 0: an exponent-bits estimate (within a few %), then two Halley steps
    /// y ← y(y³ + 2t)/(2y³ + t), each cubing the relative error.
    @inline(__always)
    static func cubeRoot(_ t: Float) -> Float {
        var y = Float(bitPattern: t.bitPattern / 3 &+ 709_921_077)
        for _ in 0..<2 {
            let y3 = y * y * y
            y = y * (y3 + 2 * t) / (2 * y3 + t)
        }
        return y
    }

    @inline(__always)
    static func f(_ t: Float) -> Float { t > 0.008856 ? cubeRoot(t) : 7.787 * t + 16.0 / 116.0 }

    @inline(__always)
    static func finv(_ t: Float) -> Float { t > 0.2068966 ? t * t * t : (t - 16.0 / 116.0) / 7.787 }

    /// L* of one 8-bit pixel.
    @inline(__always)
    static func lightness(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> Float {
        let m = rgbToXYZ
        return 116 * f(m[3] * linear[Int(r)] + m[4] * linear[Int(g)] + m[5] * linear[Int(b)]) - 16
    }

    typealias Lanes = SIMD8<Float>

    /// ∛t on 8 lanes (t > 0), as `cubeRoot`.
    @inline(__always)
    static func cubeRoot(_ t: Lanes) -> Lanes {
        var y = Lanes()
        for lane in 0..<8 { y[lane] = Float(bitPattern: t[lane].bitPattern / 3 &+ 709_921_077) }
        for _ in 0..<2 {
            let y3 = y * y * y
            y = y * (y3 + 2 * t) / (2 * y3 + t)
        }
        return y
    }

    @inline(__always)
    static func f(_ t: Lanes) -> Lanes {
        var result = cubeRoot(t.replacing(with: 1, where: t .<= 0.008856))
        result.replace(with: t * 7.787 + 16.0 / 116.0, where: t .<= 0.008856)
        return result
    }

    /// L*, a*, b* of every pixel (three planes of n values), 8 pixels at a time.
    static func convert(_ pixels: UnsafeBufferPointer<UInt8>, count n: Int,
                        l: UnsafeMutablePointer<Float>, a: UnsafeMutablePointer<Float>, b: UnsafeMutablePointer<Float>) {
        linear.withUnsafeBufferPointer { lin in
            let m = rgbToXYZ
            let (m0, m1, m2, m3, m4, m5, m6, m7, m8) = (m[0] / white.0, m[1] / white.0, m[2] / white.0, m[3], m[4], m[5],
                                                        m[6] / white.2, m[7] / white.2, m[8] / white.2)
            var i = 0
            while i + 8 <= n {
                var r = Lanes(), g = Lanes(), bl = Lanes()
                for lane in 0..<8 {
                    r[lane] = lin[Int(pixels[3 * (i + lane)])]
                    g[lane] = lin[Int(pixels[3 * (i + lane) + 1])]
                    bl[lane] = lin[Int(pixels[3 * (i + lane) + 2])]
                }
                let fx = f(m0 * r + m1 * g + m2 * bl), fy = f(m3 * r + m4 * g + m5 * bl), fz = f(m6 * r + m7 * g + m8 * bl)
                UnsafeMutableRawPointer(l + i).storeBytes(of: 116 * fy - 16, as: Lanes.self)
                UnsafeMutableRawPointer(a + i).storeBytes(of: 500 * (fx - fy), as: Lanes.self)
                UnsafeMutableRawPointer(b + i).storeBytes(of: 200 * (fy - fz), as: Lanes.self)
                i += 8
            }
            for j in i..<n {  // the last few pixels
                let r = lin[Int(pixels[3 * j])], g = lin[Int(pixels[3 * j + 1])], bl = lin[Int(pixels[3 * j + 2])]
                let fx = f(m0 * r + m1 * g + m2 * bl), fy = f(m3 * r + m4 * g + m5 * bl), fz = f(m6 * r + m7 * g + m8 * bl)
                l[j] = 116 * fy - 16
                a[j] = 500 * (fx - fy)
                b[j] = 200 * (fy - fz)
            }
        }
    }

    @inline(__always)
    static func finv(_ t: Lanes) -> Lanes {
        (t * t * t).replacing(with: (t - 16.0 / 116.0) / 7.787, where: t .<= 0.2068966)
    }

    /// 8-bit sRGB of every pixel from L*, a*, b* planes (out-of-gamut values clip to 0…255):
    /// 8 pixels at a time to linear RGB, then each value's 8-bit level by table.
    static func convertBack(l: UnsafePointer<Float>, a: UnsafePointer<Float>, b: UnsafePointer<Float>, count n: Int,
                            into pixels: UnsafeMutableBufferPointer<UInt8>) {
        outputThresholds.withUnsafeBufferPointer { t in binStart.withUnsafeBufferPointer { start in
            let m = xyzToRGB
            let scale = Float(bins)
            @inline(__always) func encode(_ v: Float) -> UInt8 {
                guard v > 0 else { return 0 }
                guard v < 1 else { return 255 }
                var k = Int(start[Int(v * scale)])
                while t[k] <= v { k += 1 }
                return UInt8(k)
            }
            @inline(__always) func rgb(_ l: Lanes, _ a: Lanes, _ b: Lanes) -> (Lanes, Lanes, Lanes) {
                let fy = (l + 16) / 116
                let x = finv(a / 500 + fy) * white.0, y = finv(fy) * white.1, z = finv(fy - b / 200) * white.2
                return (m[0] * x + m[1] * y + m[2] * z, m[3] * x + m[4] * y + m[5] * z, m[6] * x + m[7] * y + m[8] * z)
            }
            // Linear RGB of 8 pixels lands in a small interleaved buffer, then each value is encoded.
            var linearRGB = [Float](repeating: 0, count: 24)
            linearRGB.withUnsafeMutableBufferPointer { buffer in
                var i = 0
                while i < n {
                    let count = min(8, n - i)
                    var lv = Lanes(), av = Lanes(), bv = Lanes()
                    if count == 8 {
                        lv = UnsafeRawPointer(l + i).loadUnaligned(as: Lanes.self)
                        av = UnsafeRawPointer(a + i).loadUnaligned(as: Lanes.self)
                        bv = UnsafeRawPointer(b + i).loadUnaligned(as: Lanes.self)
                    } else {
                        for lane in 0..<count { lv[lane] = l[i + lane]; av[lane] = a[i + lane]; bv[lane] = b[i + lane] }
                    }
                    let (r, g, bl) = rgb(lv, av, bv)
                    for lane in 0..<8 { buffer[3 * lane] = r[lane]; buffer[3 * lane + 1] = g[lane]; buffer[3 * lane + 2] = bl[lane] }
                    for k in 0..<(3 * count) { pixels[3 * i + k] = encode(buffer[k]) }
                    i += 8
                }
            }
        } }
    }
}
