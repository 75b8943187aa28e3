/// Vectorised elementary functions on 16 lanes, used by every elementwise kernel.
///
/// All are `@_transparent`: `@inlinable @inline(__always)` was not honoured inside large callers
/// (the scan's kernels called `exp2` out of line, each call spilling its 16 lanes), and these
/// functions are only worth having inlined.
///
/// Accuracy: `exp` is within about 2 ulp of the correctly rounded result over its whole finite
/// range, the others within a few ulp (checked against libm in the tests).
public enum VectorMath {
    public typealias Vector = SIMD16<Float>

    /// eˣ. Inputs above 88.37 saturate at e^88.37 ≈ 2.4e38 (finite, so later arithmetic never
    /// meets ∞ − ∞); inputs below −87.33 give exactly 0.
    ///
    /// Range reduction: x = n·ln2 + r with |r| ≤ ln2/2 (ln2 split in two parts so r is exact),
    /// eʳ by a minimax polynomial, then scaled by 2ⁿ through the exponent bits.
    @_transparent
    public static func exp(_ x: Vector) -> Vector {
        var x = x
        let underflow = x .< -87.33
        x.replace(with: 88.37, where: x .> 88.37)
        x.replace(with: -87.33, where: underflow)
        // Adding 1.5·2²³ rounds x·log₂e to the nearest integer n and leaves n in the low mantissa
        // bits (|n| ≤ 128 ≪ 2²²): pure vector arithmetic, no float→int conversion.
        let shifted = Vector(repeating: 12_582_912).addingProduct(x, 1.442_695_04)
        let n = shifted - 12_582_912
        let r = x.addingProduct(n, -0.693_145_75).addingProduct(n, -1.428_606_8e-6)
        // eʳ = 1 + r + r²·P(r), P the degree-5 minimax polynomial of Cephes' expf (≈ 1 ulp).
        var p = Vector(repeating: 1.398_199_950_7e-3).addingProduct(r, Vector(repeating: 1.987_569_150_0e-4))
        p = Vector(repeating: 8.333_451_907_3e-3).addingProduct(p, r)
        p = Vector(repeating: 4.166_579_589_4e-2).addingProduct(p, r)
        p = Vector(repeating: 1.666_666_545_9e-1).addingProduct(p, r)
        p = Vector(repeating: 5.000_000_120_1e-1).addingProduct(p, r)
        p = (r + 1).addingProduct(p, r * r)
        let exponent = (unsafeBitCast(shifted, to: SIMD16<Int32>.self) &- 0x4B40_0000 &+ 127) &<< 23
        var result = p * unsafeBitCast(exponent, to: Vector.self)
        result.replace(with: 0, where: underflow)
        return result
    }

    /// 2ˣ for x ≤ 127, for the scan's decays exp(Δ·A) = 2^(Δ·A·log₂e) (Δ ≥ 0, A < 0, so x ≤ 0)
    /// with A·log₂e computed once per call. Inputs below −126 give 2⁻¹²⁶ (not a subnormal or
    /// 0, which the scan cannot tell apart from 0); inputs above 127 are not supported (no upper
    /// clamp: it would cost a tenth of the scan's arithmetic).
    @_transparent
    public static func exp2(_ x: Vector) -> Vector {
        var x = x  // a comparison and a blend: SIMD's `clamped`/`pointwiseMax` compile to scalar loops
        x.replace(with: -126, where: x .< -126)
        return exp2InRange(x)
    }

    /// 2ˣ for −126 ≤ x ≤ 127 (unchecked: callers that know their range skip the clamp).
    /// Cheaper than `exp`: no ln 2 split, since x = n + f with f = x − n exact. 2ᶠ on |f| ≤ ½ as
    /// 1 + f·P(f), P of degree 4 fitted for relative error (9.2e-8 in exact arithmetic, about
    /// 1.6e-7 ≈ 3 ulp evaluated in Float; exact at 0). A degree-6 polynomial (about 1e-7 in Float)
    /// cost one more FMA per state update in the scan's inner loop, for about one ulp.
    @_transparent
    public static func exp2InRange(_ x: Vector) -> Vector {
        let shifted = x + 12_582_912  // rounds to the nearest integer n, kept in the low mantissa bits
        let f = x - (shifted - 12_582_912)
        var p = Vector(repeating: 9.671_495_428_959_953e-3).addingProduct(f, Vector(repeating: 1.326_466_673_883_756_2e-3))
        p = Vector(repeating: 5.550_733_733_206_361_7e-2).addingProduct(p, f)
        p = Vector(repeating: 2.402_224_235_494_950_5e-1).addingProduct(p, f)
        p = Vector(repeating: 6.931_469_777_206_161_8e-1).addingProduct(p, f)
        p = Vector(repeating: 1).addingProduct(p, f)
        // bits(shifted) = 0x4B40_0000 + n, so (n + 127) << 23 is bits << 23 plus a constant (mod 2³²).
        let exponent = (unsafeBitCast(shifted, to: SIMD16<Int32>.self) &<< 23) &+ Int32(bitPattern: UInt32(truncatingIfNeeded: (127 &- 0x4B40_0000) << 23))
        return p * unsafeBitCast(exponent, to: Vector.self)
    }

    /// σ(x) = 1 / (1 + e⁻ˣ).
    @_transparent
    public static func sigmoid(_ x: Vector) -> Vector {
        1 / (1 + exp(-x))
    }

    /// SiLU: x·σ(x).
    @_transparent
    public static func silu(_ x: Vector) -> Vector {
        x * sigmoid(x)
    }

    /// ∂L/∂x of SiLU: g·σ(x)(1 + x(1 − σ(x))).
    @_transparent
    public static func siluBackward(_ x: Vector, _ g: Vector) -> Vector {
        let s = sigmoid(x)
        return g * s * (1 + x * (1 - s))
    }

    /// softplus(x) and its slope σ(x), sharing e = e^−|x|: softplus = max(x, 0) + ln(1 + e), and
    /// σ(x) = 1/(1 + e) for x ≥ 0, e/(1 + e) below.
    ///
    /// ln(1 + e) for e in [0, 1] is e·q(e), q a degree-9 polynomial fitted for relative error
    /// (4.7e-9 in exact arithmetic, about 2e-7 evaluated in Float): no logarithm and no division
    /// in the value, so the scan's kernels, which take softplus of every Δ, stay cheap.
    @_transparent
    public static func softplusAndSlope(_ x: Vector) -> (value: Vector, slope: Vector) {
        let negative = x .< 0
        var absolute = x, positive = x
        absolute.replace(with: -x, where: negative)
        positive.replace(with: 0, where: negative)
        let e = exp(-absolute)
        var q = Vector(repeating: 1.985_117_419_912_667_6e-2).addingProduct(e, Vector(repeating: -3.243_959_865_584_598e-3))
        q = Vector(repeating: -5.695_900_642_700_979_5e-2).addingProduct(q, e)
        q = Vector(repeating: 1.060_360_303_047_835_5e-1).addingProduct(q, e)
        q = Vector(repeating: -1.530_556_314_251_842_2e-1).addingProduct(q, e)
        q = Vector(repeating: 1.967_592_959_724_441_8e-1).addingProduct(q, e)
        q = Vector(repeating: -2.495_413_192_954_230_6e-1).addingProduct(q, e)
        q = Vector(repeating: 3.332_996_227_395_398_4e-1).addingProduct(q, e)
        q = Vector(repeating: -4.999_990_241_958_889_3e-1).addingProduct(q, e)
        q = Vector(repeating: 9.999_999_952_876_789e-1).addingProduct(q, e)
        var numerator = Vector(repeating: 1)
        numerator.replace(with: e, where: negative)
        return (positive.addingProduct(e, q), numerator / (1 + e))
    }

    /// softplus(x) = max(x, 0) + ln(1 + e^−|x|) (the slope's division is dead code once inlined).
    @_transparent
    public static func softplus(_ x: Vector) -> Vector { softplusAndSlope(x).value }

    @usableFromInline static let sqrtTwoOverPi: Float = 0.797_884_56
    @usableFromInline static let geluCubic: Float = 0.044_715

    /// GELU, tanh form, as x·σ(2u), u = √(2/π)(x + 0.044715x³) (½(1 + tanh u) = σ(2u)).
    @_transparent
    public static func geluTanh(_ x: Vector) -> Vector {
        x * sigmoid(2 * sqrtTwoOverPi * (x + geluCubic * x * x * x))
    }

    /// ∂L/∂x of GELU (tanh form): g·[s + 2x·s(1 − s)·u′], s = σ(2u), u′ = √(2/π)(1 + 3·0.044715x²).
    @_transparent
    public static func geluTanhBackward(_ x: Vector, _ g: Vector) -> Vector {
        let x2 = x * x
        let s = sigmoid(2 * sqrtTwoOverPi * (x + geluCubic * x2 * x))
        let du = sqrtTwoOverPi * (1 + 3 * geluCubic * x2)
        return g * (s + 2 * x * s * (1 - s) * du)
    }

    /// Φ(x), the standard normal distribution function ½(1 + erf(x/√2)). With z = x/√2:
    /// for |z| < 1, erf(z) = z·P(z²), P the Taylor series of erf/z to z²⁰ (terms
    /// (2/√π)(−1)ⁿ/(n!(2n+1)); the first left out is below 1.4e-8); for |z| ≥ 1, the tail
    /// ½erfc(|z|) = ½·t·Q(t)·e^(−z²), t = 1/(1 + |z|/2), Q of degree 8 fitted for relative error
    /// (scripts/reference/fit_normal_tail.py: 2.5e-9 in exact arithmetic), taken directly for
    /// x < 0, so the lower tail keeps its relative accuracy (no cancellation in 1 + erf). Measured
    /// in float against the exact Φ: within 1.1e-7 (absolute) everywhere.
    @_transparent
    public static func normalCDF(_ x: Vector) -> Vector {
        let z = x * 0.707_106_78
        let s = z * z
        var p = Vector(repeating: -1.636_584_469_1e-7).addingProduct(s, Vector(repeating: 1.480_719_281_6e-8))
        p = Vector(repeating: 1.646_211_436_6e-6).addingProduct(p, s)
        p = Vector(repeating: -1.492_565_035_8e-5).addingProduct(p, s)
        p = Vector(repeating: 1.205_533_298_2e-4).addingProduct(p, s)
        p = Vector(repeating: -8.548_327_023_5e-4).addingProduct(p, s)
        p = Vector(repeating: 5.223_977_625_4e-3).addingProduct(p, s)
        p = Vector(repeating: -2.686_617_064_5e-2).addingProduct(p, s)
        p = Vector(repeating: 1.128_379_167_1e-1).addingProduct(p, s)
        p = Vector(repeating: -3.761_263_890_3e-1).addingProduct(p, s)
        p = Vector(repeating: 1.128_379_167_1).addingProduct(p, s)
        let near = Vector(repeating: 0.5).addingProduct(0.5 * z, p)
        var magnitude = z
        magnitude.replace(with: -z, where: z .< 0)
        let t = 1 / Vector(repeating: 1).addingProduct(magnitude, 0.5)
        var q = Vector(repeating: 2.262_585_798_9e-1).addingProduct(t, Vector(repeating: -4.015_075_788_6e-2))
        q = Vector(repeating: -4.132_665_866_1e-1).addingProduct(q, t)
        q = Vector(repeating: 2.286_861_929_9e-1).addingProduct(q, t)
        q = Vector(repeating: -8.275_478_856_7e-3).addingProduct(q, t)
        q = Vector(repeating: 1.991_040_985_8e-1).addingProduct(q, t)
        q = Vector(repeating: 2.433_649_067_2e-1).addingProduct(q, t)
        q = Vector(repeating: 2.823_908_419_6e-1).addingProduct(q, t)
        q = Vector(repeating: 2.820_839_503_2e-1).addingProduct(q, t)
        let tail = 0.5 * q * t * exp(-s)  // ½erfc(|z|)
        var far = 1 - tail
        far.replace(with: tail, where: x .< 0)
        far.replace(with: near, where: magnitude .< 1)
        return far
    }

    /// GELU, erf form: x·Φ(x).
    @_transparent
    public static func geluErf(_ x: Vector) -> Vector { x * normalCDF(x) }

    /// ∂L/∂x of GELU (erf form): g·(Φ(x) + x·φ(x)), φ(x) = e^(−x²/2)/√(2π).
    @_transparent
    public static func geluErfBackward(_ x: Vector, _ g: Vector) -> Vector {
        g * normalCDF(x).addingProduct(x * exp(-0.5 * x * x), 0.398_942_28)
    }

    /// tanh(x) = 1 − 2 / (e²ˣ + 1), exact in the limits because `exp` saturates.
    @_transparent
    public static func tanh(_ x: Vector) -> Vector {
        1 - 2 / (exp(2 * x) + 1)
    }
}
