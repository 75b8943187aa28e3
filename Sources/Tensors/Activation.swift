import Foundation

/// Pointwise nonlinearities with their derivatives. Every forward is `f(x) → y`; every backward
/// takes the forward input `x` and the upstream gradient `g = ∂L/∂y` and returns `∂L/∂x = g·f′(x)`.
/// Outputs may alias inputs.
public enum Activation {
    typealias Vector = SIMD16<Float>

    // MARK: exp

    /// y = eˣ
    public static func exp(_ x: UnsafeBufferPointer<Float>, into y: UnsafeMutableBufferPointer<Float>) {
        SIMDLoops.map(x, y, VectorMath.exp)
    }

    /// ∂L/∂x = g·eˣ
    public static func expBackward(_ x: UnsafeBufferPointer<Float>, _ g: UnsafeBufferPointer<Float>,
                                   into gx: UnsafeMutableBufferPointer<Float>) {
        SIMDLoops.map(x, g, gx) { VectorMath.exp($0) * $1 }
    }

    // MARK: sigmoid

    /// y = σ(x) = 1 / (1 + e⁻ˣ)
    public static func sigmoid(_ x: UnsafeBufferPointer<Float>, into y: UnsafeMutableBufferPointer<Float>) {
        SIMDLoops.map(x, y, VectorMath.sigmoid)
    }

    /// ∂L/∂x = g·σ(x)(1 − σ(x))
    public static func sigmoidBackward(_ x: UnsafeBufferPointer<Float>, _ g: UnsafeBufferPointer<Float>,
                                       into gx: UnsafeMutableBufferPointer<Float>) {
        SIMDLoops.map(x, g, gx) { x, g in
            let s = VectorMath.sigmoid(x)
            return g * s * (1 - s)
        }
    }

    // MARK: SiLU

    /// y = x·σ(x)
    public static func silu(_ x: UnsafeBufferPointer<Float>, into y: UnsafeMutableBufferPointer<Float>) {
        SIMDLoops.map(x, y, VectorMath.silu)
    }

    /// ∂L/∂x = g·σ(x)(1 + x(1 − σ(x)))
    public static func siluBackward(_ x: UnsafeBufferPointer<Float>, _ g: UnsafeBufferPointer<Float>,
                                    into gx: UnsafeMutableBufferPointer<Float>) {
        SIMDLoops.map(x, g, gx, VectorMath.siluBackward)
    }

    // MARK: softplus

    /// y = ln(1 + eˣ), computed as max(x, 0) + ln(1 + e^−|x|) so it neither overflows for large x
    /// nor loses the tiny values of very negative x.
    public static func softplus(_ x: UnsafeBufferPointer<Float>, into y: UnsafeMutableBufferPointer<Float>) {
        SIMDLoops.map(x, y, VectorMath.softplus)
    }

    /// ∂L/∂x = g·σ(x)
    public static func softplusBackward(_ x: UnsafeBufferPointer<Float>, _ g: UnsafeBufferPointer<Float>,
                                        into gx: UnsafeMutableBufferPointer<Float>) {
        SIMDLoops.map(x, g, gx) { VectorMath.sigmoid($0) * $1 }
    }

    // MARK: GELU, tanh form

    /// y = ½x(1 + tanh(u)), u = √(2/π)(x + 0.044715x³)  (PyTorch's `gelu(approximate="tanh")`),
    /// computed as x·σ(2u), the same function without the cancellation of 1 + tanh(u) for x < 0.
    public static func geluTanh(_ x: UnsafeBufferPointer<Float>, into y: UnsafeMutableBufferPointer<Float>) {
        SIMDLoops.map(x, y, VectorMath.geluTanh)
    }

    /// ∂L/∂x = g·[s + 2x·s(1 − s)·u′], s = σ(2u), u′ = √(2/π)(1 + 3·0.044715x²)
    /// (from ½(1 + tanh u) = s and 1 − tanh²u = 4s(1 − s)).
    public static func geluTanhBackward(_ x: UnsafeBufferPointer<Float>, _ g: UnsafeBufferPointer<Float>,
                                        into gx: UnsafeMutableBufferPointer<Float>) {
        SIMDLoops.map(x, g, gx, VectorMath.geluTanhBackward)
    }

    // MARK: GELU, erf form

    /// y = x·Φ(x) = ½x(1 + erf(x/√2))  (PyTorch's default `gelu`), Φ by `VectorMath.normalCDF`
    /// (16 lanes at a time; libm's erf per element took 14 % of MAMIM pretraining with a decoder MLP).
    public static func geluErf(_ x: UnsafeBufferPointer<Float>, into y: UnsafeMutableBufferPointer<Float>) {
        SIMDLoops.map(x, y, VectorMath.geluErf)
    }

    /// ∂L/∂x = g·(Φ(x) + x·φ(x)), φ(x) = e^(−x²/2)/√(2π)
    public static func geluErfBackward(_ x: UnsafeBufferPointer<Float>, _ g: UnsafeBufferPointer<Float>,
                                       into gx: UnsafeMutableBufferPointer<Float>) {
        SIMDLoops.map(x, g, gx, VectorMath.geluErfBackward)
    }
}
