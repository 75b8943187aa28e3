import COpenJPEG
import Foundation

/// Decodes one JPEG 2000 tile (a raw J2K codestream, or a JP2 file) with OpenJPEG into 8-bit RGB.
///
/// Aperio stores compression 33003 as YCbCr and 33005 as RGB; `ycbcr` selects the conversion
/// (JPEG's full-range equations). Chroma planes of any subsampling are upsampled by repetition.
enum JPEG2000Decoder {
    /// Throws a message (the caller adds file and tile).
    static func decode(_ bytes: [UInt8], width: Int, height: Int, ycbcr: Bool) throws -> [UInt8] {
        let isJP2 = bytes.count > 12 && bytes[4] == 0x6A && bytes[5] == 0x50 && bytes[6] == 0x20 && bytes[7] == 0x20
        let bytes = isJP2 ? bytes : try terminatedCodestream(bytes)
        let source = MemorySource(bytes)
        guard let stream = opj_stream_create(1 << 16, 1) else { throw DecodeFailure("OpenJPEG could not create a stream") }
        defer { opj_stream_destroy(stream) }
        let context = Unmanaged.passUnretained(source).toOpaque()
        opj_stream_set_user_data(stream, context, nil)
        opj_stream_set_user_data_length(stream, UInt64(bytes.count))
        opj_stream_set_read_function(stream, memoryRead)
        opj_stream_set_skip_function(stream, memorySkip)
        opj_stream_set_seek_function(stream, memorySeek)

        guard let codec = opj_create_decompress(isJP2 ? OPJ_CODEC_JP2 : OPJ_CODEC_J2K) else {
            throw DecodeFailure("OpenJPEG could not create a decoder")
        }
        defer { opj_destroy_codec(codec) }
        let messages = OpenJPEGMessages()
        let messageContext = Unmanaged.passUnretained(messages).toOpaque()
        opj_set_error_handler(codec, openJPEGError, messageContext)
        opj_set_warning_handler(codec, { _, _ in }, nil)
        opj_set_info_handler(codec, { _, _ in }, nil)
        var parameters = opj_dparameters_t()
        opj_set_default_decoder_parameters(&parameters)
        guard opj_setup_decoder(codec, &parameters) != 0 else { throw DecodeFailure("OpenJPEG rejected the decoder setup") }

        var imagePointer: UnsafeMutablePointer<opj_image_t>? = nil
        guard opj_read_header(stream, codec, &imagePointer) != 0, let image = imagePointer else {
            throw DecodeFailure("not a JPEG 2000 codestream (\(messages.last ?? "header unreadable"))")
        }
        defer { opj_image_destroy(image) }
        guard opj_decode(codec, stream, image) != 0, opj_end_decompress(codec, stream) != 0 else {
            throw DecodeFailure("JPEG 2000 data is corrupt (\(messages.last ?? "decode failed"))")
        }
        let count = Int(image.pointee.numcomps)
        guard count >= 3, let components = image.pointee.comps else {
            throw DecodeFailure("JPEG 2000 tile has \(count) component(s); RGB needs 3")
        }
        let imageWidth = Int(image.pointee.x1 - image.pointee.x0), imageHeight = Int(image.pointee.y1 - image.pointee.y0)
        guard imageWidth >= width, imageHeight >= height else {
            throw DecodeFailure("JPEG 2000 tile is \(imageWidth)×\(imageHeight), smaller than the \(width)×\(height) tile")
        }
        var planes: [(data: UnsafeMutablePointer<Int32>, width: Int, height: Int, dx: Int, dy: Int, shift: Int, offset: Int32)] = []
        for c in 0..<3 {
            let comp = components[c]
            guard let data = comp.data, comp.w > 0, comp.h > 0, comp.dx > 0, comp.dy > 0 else {
                throw DecodeFailure("JPEG 2000 component \(c) has no data")
            }
            let precision = Int(comp.prec)
            guard precision >= 1 && precision <= 16 else { throw DecodeFailure("JPEG 2000 component precision \(precision) is not supported") }
            planes.append((data, Int(comp.w), Int(comp.h), Int(comp.dx), Int(comp.dy), max(0, precision - 8),
                           comp.sgnd != 0 ? Int32(1 << (precision - 1)) : 0))
        }
        var rgb = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                var v = [Int32](repeating: 0, count: 3)
                for c in 0..<3 {
                    let p = planes[c]
                    let px = min(x / p.dx, p.width - 1), py = min(y / p.dy, p.height - 1)
                    v[c] = (p.data[py * p.width + px] + p.offset) >> Int32(p.shift)
                }
                let o = (y * width + x) * 3
                if ycbcr {
                    let luma = Float(v[0]), cb = Float(v[1]) - 128, cr = Float(v[2]) - 128
                    rgb[o] = clamp(luma + 1.402 * cr)
                    rgb[o + 1] = clamp(luma - 0.344_136 * cb - 0.714_136 * cr)
                    rgb[o + 2] = clamp(luma + 1.772 * cb)
                } else {
                    rgb[o] = UInt8(clamping: v[0]); rgb[o + 1] = UInt8(clamping: v[1]); rgb[o + 2] = UInt8(clamping: v[2])
                }
            }
        }
        return rgb
    }

    @inline(__always) static func clamp(_ v: Float) -> UInt8 { UInt8(max(0, min(255, v.rounded()))) }

    /// A raw codestream checked for the structure OpenJPEG trusts, ending with its EOC marker.
    ///
    /// Walks the main header's marker segments and then the tile-parts (SOT, whose Psot gives the
    /// tile-part's length, 0 meaning "to the end"). A tile-part running past the data is a truncated
    /// tile and an error here; a stream that stops exactly after its last tile-part gets the EOC
    /// it lacks. (OpenJPEG 2.5.0 aborts the process on that second case, an assertion in its
    /// stream reader, instead of reporting it.)
    static func terminatedCodestream(_ bytes: [UInt8]) throws -> [UInt8] {
        func marker(at i: Int) -> Int { Int(bytes[i]) << 8 | Int(bytes[i + 1]) }
        func value(at i: Int, size: Int) -> Int { (i..<(i + size)).reduce(0) { $0 << 8 | Int(bytes[$1]) } }
        let (soc, sot, eoc) = (0xFF4F, 0xFF90, 0xFFD9)
        guard bytes.count >= 2, marker(at: 0) == soc else { throw DecodeFailure("not a JPEG 2000 codestream (no SOC marker)") }
        var i = 2
        while i + 4 <= bytes.count && marker(at: i) != sot {  // main header: every segment has a length
            let length = value(at: i + 2, size: 2)
            guard length >= 2 && i + 2 + length <= bytes.count else {
                throw DecodeFailure("JPEG 2000 header is truncated (marker segment at byte \(i) runs past the \(bytes.count) bytes)")
            }
            i += 2 + length
        }
        while i + 12 <= bytes.count && marker(at: i) == sot {
            let partLength = value(at: i + 6, size: 4)
            if partLength == 0 { break }  // the last tile-part, to the end of the data
            guard i + partLength <= bytes.count else {
                throw DecodeFailure("JPEG 2000 tile is truncated (a tile-part needs \(i + partLength) bytes, \(bytes.count) are present)")
            }
            i += partLength
        }
        let terminated = bytes.count >= 4 && marker(at: bytes.count - 2) == eoc
        return terminated ? bytes : bytes + [0xFF, 0xD9]
    }
}

struct DecodeFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The bytes OpenJPEG reads through its stream callbacks.
private final class MemorySource {
    let bytes: [UInt8]
    var position = 0
    init(_ bytes: [UInt8]) { self.bytes = bytes }
}

private final class OpenJPEGMessages {
    var last: String?
}

private let openJPEGError: opj_msg_callback = { message, context in
    guard let message, let context else { return }
    Unmanaged<OpenJPEGMessages>.fromOpaque(context).takeUnretainedValue().last =
        String(cString: message).trimmingCharacters(in: .whitespacesAndNewlines)
}

private let memoryRead: opj_stream_read_fn = { buffer, count, context in
    let source = Unmanaged<MemorySource>.fromOpaque(context!).takeUnretainedValue()
    let available = source.bytes.count - source.position
    guard available > 0, let buffer else { return OPJ_SIZE_T.max }  // (OPJ_SIZE_T)-1: end of stream
    let n = min(Int(count), available)
    source.bytes.withUnsafeBytes { raw in
        buffer.copyMemory(from: raw.baseAddress! + source.position, byteCount: n)
    }
    source.position += n
    return OPJ_SIZE_T(n)
}

private let memorySkip: opj_stream_skip_fn = { count, context in
    let source = Unmanaged<MemorySource>.fromOpaque(context!).takeUnretainedValue()
    let target = max(0, min(source.bytes.count, source.position + Int(count)))
    let skipped = target - source.position
    source.position = target
    return OPJ_OFF_T(skipped)
}

private let memorySeek: opj_stream_seek_fn = { offset, context in
    let source = Unmanaged<MemorySource>.fromOpaque(context!).takeUnretainedValue()
    guard offset >= 0 && Int(offset) <= source.bytes.count else { return 0 }
    source.position = Int(offset)
    return 1
}
