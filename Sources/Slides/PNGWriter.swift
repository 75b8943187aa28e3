import CZlib
import Foundation

/// Writes 8-bit RGB PNG files: each row filtered with the PNG filter (none, sub, up, average,
/// Paeth) whose output has the smallest sum of absolute values (the heuristic libpng and PIL use),
/// then deflated by zlib at its default level. Written to a temporary file and renamed into place.
public enum PNGWriter {
    public static func write(_ image: RGBImage, to url: URL) throws {
        var png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        var header = [UInt8]()
        header += bigEndian(UInt32(image.width)) + bigEndian(UInt32(image.height))
        header += [8, 2, 0, 0, 0]  // 8 bits, truecolour, deflate, adaptive filtering, no interlace
        chunk("IHDR", header, into: &png)
        chunk("IDAT", try deflate(filtered(image), path: url.path), into: &png)
        chunk("IEND", [], into: &png)
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp")
        do {
            try Data(png).write(to: temporary)
            guard rename(temporary.path, url.path) == 0 else { throw SlideError(.invalidRequest, url.path, "cannot rename into place") }
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw SlideError(.invalidRequest, url.path, "cannot write the PNG file: " + (OutputFolder.problem(for: url) ?? "\(String(cString: strerror(errno))); check the disk has room"))
        }
    }

    /// The rows, each preceded by its filter type and filtered with it (PNG spec, section 9).
    static func filtered(_ image: RGBImage) -> [UInt8] {
        let stride = image.width * 3
        var out = [UInt8](repeating: 0, count: image.height * (stride + 1))
        image.pixels.withUnsafeBufferPointer { pixels in
            for y in 0..<image.height {
                let row = y * stride, above = row - stride
                /// Byte i of the row under filter `type`: the pixel minus its prediction, mod 256.
                func residual(_ type: UInt8, _ i: Int) -> UInt8 {
                    let x = Int(pixels[row + i])
                    let a = i >= 3 ? Int(pixels[row + i - 3]) : 0
                    let b = y > 0 ? Int(pixels[above + i]) : 0
                    let c = i >= 3 && y > 0 ? Int(pixels[above + i - 3]) : 0
                    let predicted: Int
                    switch type {
                    case 0: predicted = 0
                    case 1: predicted = a
                    case 2: predicted = b
                    case 3: predicted = (a + b) / 2
                    default:
                        let p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
                        predicted = pa <= pb && pa <= pc ? a : (pb <= pc ? b : c)
                    }
                    return UInt8(truncatingIfNeeded: x - predicted)
                }
                // The filter whose residuals, read as signed bytes, have the least absolute sum (first on ties).
                let costs = (UInt8(0)...4).map { type in (0..<stride).reduce(0) { let r = Int(residual(type, $1)); return $0 + min(r, 256 - r) } }
                let best = UInt8(costs.indices.min { costs[$0] < costs[$1] }!)
                let start = y * (stride + 1)
                out[start] = best
                for i in 0..<stride { out[start + 1 + i] = residual(best, i) }
            }
        }
        return out
    }

    /// A zlib stream of `data` at zlib's default level.
    static func deflate(_ data: [UInt8], path: String) throws -> [UInt8] {
        var size = compressBound(uLong(data.count))
        var out = [UInt8](repeating: 0, count: Int(size))
        let status = out.withUnsafeMutableBufferPointer { dst in
            data.withUnsafeBufferPointer { src in compress2(dst.baseAddress, &size, src.baseAddress, uLong(src.count), Z_DEFAULT_COMPRESSION) }
        }
        guard status == Z_OK else { throw SlideError(.invalidRequest, path, "zlib could not compress the image (status \(status))") }
        out.removeLast(out.count - Int(size))
        return out
    }

    static func chunk(_ type: String, _ data: [UInt8], into png: inout [UInt8]) {
        let typeBytes = Array(type.utf8)
        png += bigEndian(UInt32(data.count)) + typeBytes + data
        png += bigEndian(crc32(typeBytes + data))
    }

    static let crcTable: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for byte in bytes { c = crcTable[Int((c ^ UInt32(byte)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }

    static func bigEndian(_ v: UInt32) -> [UInt8] {
        [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)]
    }
}
