/// Area-averaging resampling: each output pixel is the mean of the source area it covers, with
/// fractional weights at the edges (the right filter for shrinking; for enlarging it reduces to
/// nearest-neighbour sampling).
public enum AreaResampler {
    /// Output of `width`×`height` covering the source window starting at (x0, y0) (source pixel
    /// units, fractional) of size (sourceWidth × sourceHeight).
    public static func resample(_ source: RGBImage, x0: Double, y0: Double, sourceWidth: Double, sourceHeight: Double,
                         width: Int, height: Int) -> RGBImage {
        let columns = weights(start: x0, extent: sourceWidth, count: width, limit: source.width)
        let rows = weights(start: y0, extent: sourceHeight, count: height, limit: source.height)
        // Horizontal pass into floats (source rows × output columns), then vertical.
        var horizontal = [Float](repeating: 0, count: source.height * width * 3)
        source.pixels.withUnsafeBufferPointer { src in
            for y in 0..<source.height {
                for (x, taps) in columns.enumerated() {
                    var r: Float = 0, g: Float = 0, b: Float = 0
                    for (sx, w) in taps {
                        let o = (y * source.width + sx) * 3
                        r += w * Float(src[o]); g += w * Float(src[o + 1]); b += w * Float(src[o + 2])
                    }
                    let o = (y * width + x) * 3
                    horizontal[o] = r; horizontal[o + 1] = g; horizontal[o + 2] = b
                }
            }
        }
        var out = [UInt8](repeating: 0, count: width * height * 3)
        for (y, taps) in rows.enumerated() {
            for x in 0..<width {
                var r: Float = 0, g: Float = 0, b: Float = 0
                for (sy, w) in taps {
                    let o = (sy * width + x) * 3
                    r += w * horizontal[o]; g += w * horizontal[o + 1]; b += w * horizontal[o + 2]
                }
                let o = (y * width + x) * 3
                out[o] = UInt8(max(0, min(255, r.rounded())))
                out[o + 1] = UInt8(max(0, min(255, g.rounded())))
                out[o + 2] = UInt8(max(0, min(255, b.rounded())))
            }
        }
        return RGBImage(width: width, height: height, pixels: out)
    }

    /// For each output index, the (source index, weight) pairs; weights sum to 1.
    static func weights(start: Double, extent: Double, count: Int, limit: Int) -> [[(Int, Float)]] {
        let scale = extent / Double(max(count, 1))
        return (0..<count).map { i in
            let low = start + Double(i) * scale, high = low + scale
            if scale <= 1 {  // enlarging or equal: the source pixel under the centre
                let centre = min(limit - 1, max(0, Int(((low + high) / 2).rounded(.down))))
                return [(centre, 1)]
            }
            var taps: [(Int, Float)] = []
            var total = 0.0
            var s = Int(low.rounded(.down))
            while Double(s) < high {
                let overlap = min(high, Double(s + 1)) - max(low, Double(s))
                if overlap > 0 {
                    taps.append((min(limit - 1, max(0, s)), Float(overlap)))
                    total += overlap
                }
                s += 1
            }
            return taps.map { ($0.0, $0.1 / Float(total)) }
        }
    }
}
