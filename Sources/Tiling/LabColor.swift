import Foundation

/// sRGB ↔ CIE L*a*b* (D65 white), as used by Reinhard normalization: L in 0…100, a and b centred
/// on 0. Input and output are 8-bit; the conversion back truncates to 8 bits like an
/// `astype(uint8)` after scaling by 255.
enum LabColor {
    /// sRGB → linear RGB for every 8-bit value (exact, so no power function per pixel).
    static let linear: [Float] = (0..<256).map { v in
        let c = Float(v) / 255
        return c > 0.04045 ? powf((c + 0.055) / 1.055, 2.4) : c / 12.92
    }

    /// The linear-light value at which the 8-bit output steps from k−1 to k (k = 1…255): the
    /// output of a linear value v is the number of thresholds ≤ v, which equals
    /// floor(255 · gamma(v)) without a power function.
    static let outputThresholds: [Double] = (1..<256).map { k in
        let c = Double(k) / 255
        return c > 0.04045 ? pow((c + 0.055) / 1.055, 2.4) : c / 12.92
    }

    static let rgbToXYZ: [Float] = [0.412453, 0.357580, 0.180423,
                                    0.212671, 0.715160, 0.072169,
                                    0.019334, 0.119193, 0.950227]
    static let white: (Float, Float, Float) = (0.95047, 1.0, 1.08883)

    /// The inverse of `rgbToXYZ` (row-major), in double precision.
    static let xyzToRGB: [Double] = {
        let m = rgbToXYZ.map(Double.init)
        let det = m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6]) + m[2] * (m[3] * m[7] - m[4] * m[6])
        return [
            (m[4] * m[8] - m[5] * m[7]) / det, (m[2] * m[7] - m[1] * m[8]) / det, (m[1] * m[5] - m[2] * m[4]) / det,
            (m[5] * m[6] - m[3] * m[8]) / det, (m[0] * m[8] - m[2] * m[6]) / det, (m[2] * m[3] - m[0] * m[5]) / det,
            (m[3] * m[7] - m[4] * m[6]) / det, (m[1] * m[6] - m[0] * m[7]) / det, (m[0] * m[4] - m[1] * m[3]) / det,
        ]
    }()

    @inline(__always)
    static func f(_ t: Float) -> Float { t > 0.008856 ? cbrtf(t) : 7.787 * t + 16.0 / 116.0 }

    /// L*, a*, b* of one 8-bit pixel.
    @inline(__always)
    static func lab(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> (Float, Float, Float) {
        let lr = linear[Int(r)], lg = linear[Int(g)], lb = linear[Int(b)]
        let m = rgbToXYZ
        let x = (m[0] * lr + m[1] * lg + m[2] * lb) / white.0
        let y = (m[3] * lr + m[4] * lg + m[5] * lb) / white.1
        let z = (m[6] * lr + m[7] * lg + m[8] * lb) / white.2
        let fx = f(x), fy = f(y), fz = f(z)
        return (116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz))
    }

    @inline(__always)
    static func finv(_ t: Double) -> Double { t > 0.2068966 ? t * t * t : (t - 16.0 / 116.0) / 7.787 }

    /// The 8-bit sRGB pixel of L*, a*, b* (out-of-gamut values clip to 0…255).
    @inline(__always)
    static func rgb(_ l: Double, _ a: Double, _ b: Double) -> (UInt8, UInt8, UInt8) {
        let fy = (l + 16) / 116
        let x = finv(a / 500 + fy) * Double(white.0), y = finv(fy) * Double(white.1), z = finv(fy - b / 200) * Double(white.2)
        let m = xyzToRGB
        return (encode(m[0] * x + m[1] * y + m[2] * z), encode(m[3] * x + m[4] * y + m[5] * z), encode(m[6] * x + m[7] * y + m[8] * z))
    }

    /// floor(255 · gamma(v)) clipped to 0…255, by binary search over the thresholds.
    @inline(__always)
    static func encode(_ v: Double) -> UInt8 {
        outputThresholds.withUnsafeBufferPointer { t in
            var low = 0, high = 255  // answer = count of thresholds ≤ v
            while low < high {
                let mid = (low + high) >> 1
                if t[mid] <= v { low = mid + 1 } else { high = mid }
            }
            return UInt8(low)
        }
    }
}
