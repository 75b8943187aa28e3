/// Conversions between `Float` and the compact storage types: `UInt8` (tiles in the cache),
/// IEEE half (`Float16`) and bfloat16 (checkpoints). All are vectorised over 16 lanes.
public enum StorageConversion {
    /// out[i] = Float(x[i])·scale + offset (e.g. scale 1/255 turns pixels into [0, 1]).
    public static func floats(fromBytes x: UnsafeBufferPointer<UInt8>, scale: Float = 1, offset: Float = 0,
                              into out: UnsafeMutableBufferPointer<Float>) {
        precondition(x.count == out.count, "length mismatch: \(x.count) vs \(out.count)")
        guard let px = x.baseAddress, let po = out.baseAddress else { return }
        var i = 0
        while i + 16 <= x.count {
            let bytes = UnsafeRawPointer(px + i).loadUnaligned(as: SIMD16<UInt8>.self)
            let values = SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: bytes))
            UnsafeMutableRawPointer(po + i).storeBytes(of: values * scale + offset, as: SIMD16<Float>.self)
            i += 16
        }
        while i < x.count { po[i] = Float(px[i]) * scale + offset; i += 1 }
    }

    /// De-interleaves 8-bit pixels into float planes: for pixel p and channel c,
    /// out[c · pixels + p] = x[p · channels + c] · scales[c] + offsets[c] (HWC bytes → CHW floats).
    public static func planarFloats(fromInterleaved x: UnsafeBufferPointer<UInt8>, channels: Int, scales: [Float], offsets: [Float],
                                    into out: UnsafeMutableBufferPointer<Float>) {
        precondition(x.count == out.count && x.count % channels == 0 && scales.count == channels && offsets.count == channels,
                     "length mismatch: \(x.count) bytes of \(channels) channels into \(out.count) floats")
        guard let px = x.baseAddress, let po = out.baseAddress else { return }
        let pixels = x.count / channels
        for c in 0..<channels {
            let (scale, offset, plane) = (scales[c], offsets[c], po + c * pixels)
            for p in 0..<pixels { plane[p] = Float(px[p * channels + c]) * scale + offset }
        }
    }

    /// out[i] = x[i] rounded to the nearest integer (ties to even) and clamped to 0…255;
    /// NaN becomes 0.
    public static func bytes(fromFloats x: UnsafeBufferPointer<Float>, into out: UnsafeMutableBufferPointer<UInt8>) {
        precondition(x.count == out.count, "length mismatch: \(x.count) vs \(out.count)")
        guard let px = x.baseAddress, let po = out.baseAddress else { return }
        var i = 0
        while i < x.count {
            let available = min(16, x.count - i)
            var v = SIMDLoops.load(px, i, available)
            v.replace(with: 0, where: .!(v .>= 0))  // negatives and NaN
            v.replace(with: 255, where: v .> 255)
            let rounded = SIMD16<Int32>(v.rounded(.toNearestOrEven), rounding: .towardZero)
            let narrow = SIMD16<UInt8>(truncatingIfNeeded: rounded)
            if available == 16 {
                UnsafeMutableRawPointer(po + i).storeBytes(of: narrow, as: SIMD16<UInt8>.self)
            } else {
                for lane in 0..<available { po[i + lane] = narrow[lane] }
            }
            i += 16
        }
    }

    /// IEEE half precision bits, round to nearest even (F16C with the project's target CPU).
    public static func halves(fromFloats x: UnsafeBufferPointer<Float>, into out: UnsafeMutableBufferPointer<UInt16>) {
        precondition(x.count == out.count, "length mismatch: \(x.count) vs \(out.count)")
        guard let px = x.baseAddress, let po = out.baseAddress else { return }
        var i = 0
        while i + 16 <= x.count {
            let halves = SIMD16<Float16>(UnsafeRawPointer(px + i).loadUnaligned(as: SIMD16<Float>.self))
            UnsafeMutableRawPointer(po + i).storeBytes(of: halves, as: SIMD16<Float16>.self)
            i += 16
        }
        while i < x.count { po[i] = Float16(px[i]).bitPattern; i += 1 }
    }

    /// Floats from IEEE half precision bits (exact).
    public static func floats(fromHalves x: UnsafeBufferPointer<UInt16>, into out: UnsafeMutableBufferPointer<Float>) {
        precondition(x.count == out.count, "length mismatch: \(x.count) vs \(out.count)")
        guard let px = x.baseAddress, let po = out.baseAddress else { return }
        var i = 0
        while i + 16 <= x.count {
            let halves = UnsafeRawPointer(px + i).loadUnaligned(as: SIMD16<Float16>.self)
            UnsafeMutableRawPointer(po + i).storeBytes(of: SIMD16<Float>(halves), as: SIMD16<Float>.self)
            i += 16
        }
        while i < x.count { po[i] = Float(Float16(bitPattern: px[i])); i += 1 }
    }

    /// bfloat16 bits: the top 16 bits of the float, rounded to nearest even; NaN stays a quiet NaN.
    public static func bfloat16s(fromFloats x: UnsafeBufferPointer<Float>, into out: UnsafeMutableBufferPointer<UInt16>) {
        precondition(x.count == out.count, "length mismatch: \(x.count) vs \(out.count)")
        guard let px = x.baseAddress, let po = out.baseAddress else { return }
        var i = 0
        while i < x.count {
            let available = min(16, x.count - i)
            let v = SIMDLoops.load(px, i, available)
            let bits = unsafeBitCast(v, to: SIMD16<UInt32>.self)
            let roundingBias = ((bits &>> 16) & 1) &+ 0x7FFF
            var rounded = (bits &+ roundingBias) &>> 16
            rounded.replace(with: (bits &>> 16) | 0x40, where: v .!= v)
            let narrow = SIMD16<UInt16>(truncatingIfNeeded: rounded)
            for lane in 0..<available { po[i + lane] = narrow[lane] }
            i += 16
        }
    }

    /// Floats from bfloat16 bits (exact: the bits become the top half of the float).
    public static func floats(fromBFloat16s x: UnsafeBufferPointer<UInt16>, into out: UnsafeMutableBufferPointer<Float>) {
        precondition(x.count == out.count, "length mismatch: \(x.count) vs \(out.count)")
        guard let px = x.baseAddress, let po = out.baseAddress else { return }
        var i = 0
        while i + 16 <= x.count {
            let wide = SIMD16<UInt32>(truncatingIfNeeded: UnsafeRawPointer(px + i).loadUnaligned(as: SIMD16<UInt16>.self)) &<< 16
            UnsafeMutableRawPointer(po + i).storeBytes(of: unsafeBitCast(wide, to: SIMD16<Float>.self), as: SIMD16<Float>.self)
            i += 16
        }
        while i < x.count { po[i] = Float(bitPattern: UInt32(px[i]) << 16); i += 1 }
    }
}

extension Tensor {
    /// A tensor from 8-bit values, each mapped to `Float(v)·scale + offset`.
    public init(bytes: [UInt8], shape: [Int], scale: Float = 1, offset: Float = 0) {
        var result = Tensor(zeros: shape)
        precondition(bytes.count == result.count, "shape \(shape) needs \(result.count) bytes, got \(bytes.count)")
        bytes.withUnsafeBufferPointer { b in
            result.withUnsafeMutableBufferPointer { StorageConversion.floats(fromBytes: b, scale: scale, offset: offset, into: $0) }
        }
        self = result
    }

    /// The values rounded and clamped to 0…255.
    public func bytes() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        withUnsafeBufferPointer { x in out.withUnsafeMutableBufferPointer { StorageConversion.bytes(fromFloats: x, into: $0) } }
        return out
    }
}
