import CZlib
import Foundation

/// A 2-D integer array from a NumPy `.npy` file or a member of a `.npz` archive (how nucleus
/// instance and type masks are distributed), as Int32.
public struct NumpyArray: Sendable, Equatable {
    public let height: Int
    public let width: Int
    public let values: [Int32]

    public subscript(x: Int, y: Int) -> Int32 { values[y * width + x] }

    /// Reads `member` (default: the first) of a `.npz`, or a `.npy` file.
    public static func read(_ path: String, member: String? = nil) throws -> NumpyArray {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SlideError(.cannotOpen, path, "cannot read the file (check the path)")
        }
        let bytes = [UInt8](data)
        if bytes.starts(with: [0x93] + Array("NUMPY".utf8)) { return try parse(bytes, path: path) }
        guard bytes.starts(with: [0x50, 0x4B, 0x03, 0x04]) else {
            throw SlideError(.notSupported, path, "neither a .npy file nor a .npz (zip) archive")
        }
        return try parse(unzip(bytes, member: member, path: path), path: path)
    }

    /// The `.npy` payload: magic, version, header length, a Python dict literal, raw data.
    static func parse(_ bytes: [UInt8], path: String) throws -> NumpyArray {
        guard bytes.count > 10 else { throw SlideError(.corruptData, path, "truncated .npy header") }
        let major = bytes[6]
        let headerLength: Int, start: Int
        if major == 1 {
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            start = 10
        } else {
            guard bytes.count > 12 else { throw SlideError(.corruptData, path, "truncated .npy header") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            start = 12
        }
        guard start + headerLength <= bytes.count else { throw SlideError(.corruptData, path, "truncated .npy header") }
        let header = String(decoding: bytes[start..<(start + headerLength)], as: UTF8.self)
        func field(_ name: String) -> String? {
            guard let range = header.range(of: "'\(name)':") else { return nil }
            return String(header[range.upperBound...]).trimmingCharacters(in: .whitespaces)
        }
        guard let descr = field("descr")?.split(separator: "'").first.map(String.init),
              let shapeText = field("shape"), let open = shapeText.firstIndex(of: "("), let close = shapeText.firstIndex(of: ")") else {
            throw SlideError(.corruptData, path, "unreadable .npy header: \(header)")
        }
        if field("fortran_order")?.hasPrefix("True") == true {
            throw SlideError(.notSupported, path, "Fortran-ordered arrays are not supported; save with np.ascontiguousarray")
        }
        let shape = shapeText[shapeText.index(after: open)..<close].split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard shape.count == 2, shape[0] > 0, shape[1] > 0 else {
            throw SlideError(.notSupported, path, "expected a 2-D array, got shape \(shape)")
        }
        // Sizes from the header are checked before any arithmetic trusts them: a product that
        // overflows, or an array larger than the file could hold, is a damaged header.
        let (count, overflow) = shape[0].multipliedReportingOverflow(by: shape[1])
        guard !overflow, count <= bytes.count else {
            throw SlideError(.corruptData, path, "the header's shape \(shape) is larger than the file (\(bytes.count) bytes): a damaged or hostile header")
        }
        let sizes: [String: Int] = ["<i4": 4, "<u4": 4, "<i8": 8, "<u8": 8, "<i2": 2, "<u2": 2, "|u1": 1, "|i1": 1, "<i1": 1, "|b1": 1]
        guard let size = sizes[descr] else { throw SlideError(.notSupported, path, "array type \(descr) is not supported (use integers)") }
        let offset = start + headerLength
        guard bytes.count >= offset + count * size else { throw SlideError(.corruptData, path, "the array data is truncated") }
        var values = [Int32](repeating: 0, count: count)
        bytes.withUnsafeBytes { raw in
            let base = raw.baseAddress! + offset
            for i in 0..<count {
                let p = base + i * size
                switch descr {
                case "<i4": values[i] = p.loadUnaligned(as: Int32.self)
                case "<u4": values[i] = Int32(truncatingIfNeeded: p.loadUnaligned(as: UInt32.self))
                case "<i8": values[i] = Int32(truncatingIfNeeded: p.loadUnaligned(as: Int64.self))
                case "<u8": values[i] = Int32(truncatingIfNeeded: p.loadUnaligned(as: UInt64.self))
                case "<i2": values[i] = Int32(p.loadUnaligned(as: Int16.self))
                case "<u2": values[i] = Int32(p.loadUnaligned(as: UInt16.self))
                case "|i1", "<i1": values[i] = Int32(p.load(as: Int8.self))
                default: values[i] = Int32(p.load(as: UInt8.self))
                }
            }
        }
        return NumpyArray(height: shape[0], width: shape[1], values: values)
    }

    /// The bytes of one member of a zip archive (stored or deflated), located through the
    /// central directory (ZIP64 included, as NumPy writes it).
    static func unzip(_ bytes: [UInt8], member: String?, path: String) throws -> [UInt8] {
        func u16(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 }
        func u32(_ at: Int) -> Int { u16(at) | u16(at + 2) << 16 }
        func u64(_ at: Int) -> Int { u32(at) | u32(at + 4) << 32 }
        let damaged = SlideError(.corruptData, path, "the zip archive's directory is damaged")
        // The end-of-central-directory record, then (if its fields overflowed) the ZIP64 one.
        guard bytes.count >= 22, let end = stride(from: bytes.count - 22, through: max(0, bytes.count - 22 - 65_535), by: -1)
            .first(where: { u32($0) == 0x0605_4B50 }) else { throw damaged }
        var count = u16(end + 10), directory = u32(end + 16)
        if directory == 0xFFFF_FFFF || count == 0xFFFF, end >= 20, u32(end - 20) == 0x0706_4B50 {
            let record = u64(end - 20 + 8)
            guard record + 56 <= bytes.count, u32(record) == 0x0606_4B50 else { throw damaged }
            count = u64(record + 32)
            directory = u64(record + 48)
        }
        var offset = directory
        var names: [String] = []
        for _ in 0..<count {
            guard offset + 46 <= bytes.count, u32(offset) == 0x0201_4B50 else { throw damaged }
            let method = u16(offset + 10)
            var compressed = u32(offset + 20), local = u32(offset + 42)
            let nameLength = u16(offset + 28), extraLength = u16(offset + 30), commentLength = u16(offset + 32)
            guard offset + 46 + nameLength + extraLength <= bytes.count else { throw damaged }
            let name = String(decoding: bytes[(offset + 46)..<(offset + 46 + nameLength)], as: UTF8.self)
            // ZIP64 extra field: 64-bit values for the fields stored as 0xFFFFFFFF, in order.
            var extra = offset + 46 + nameLength
            let extraEnd = extra + extraLength
            while extra + 4 <= extraEnd {
                let id = u16(extra), size = u16(extra + 2)
                if id == 0x0001 {
                    var field = extra + 4
                    if u32(offset + 24) == 0xFFFF_FFFF { field += 8 }
                    if compressed == 0xFFFF_FFFF { compressed = u64(field); field += 8 }
                    if local == 0xFFFF_FFFF { local = u64(field) }
                }
                extra += 4 + size
            }
            names.append(name)
            if member == nil || member == name || member.map({ $0 + ".npy" }) == name {
                guard local + 30 <= bytes.count, u32(local) == 0x0403_4B50 else { throw damaged }
                let start = local + 30 + u16(local + 26) + u16(local + 28)
                switch method {
                case 0:
                    guard start + compressed <= bytes.count else { throw damaged }
                    return Array(bytes[start..<(start + compressed)])
                case 8: return try inflate(bytes, from: start, path: path)
                default: throw SlideError(.notSupported, path, "zip member \(name) uses compression method \(method); only stored and deflate are supported")
                }
            }
            offset += 46 + nameLength + extraLength + commentLength
        }
        throw SlideError(.invalidRequest, path, "no member \(member ?? "") in the archive; it holds: \(names.joined(separator: ", "))")
    }

    static func inflate(_ bytes: [UInt8], from start: Int, path: String) throws -> [UInt8] {
        var stream = z_stream()
        guard inflateInit2_(&stream, -MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw SlideError(.corruptData, path, "cannot start inflating")
        }
        defer { inflateEnd(&stream) }
        var output = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        var status: Int32 = Z_OK
        try bytes.withUnsafeBufferPointer { input in
            stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress! + start)
            stream.avail_in = UInt32(input.count - start)
            repeat {
                try chunk.withUnsafeMutableBufferPointer { out in
                    stream.next_out = out.baseAddress
                    stream.avail_out = UInt32(out.count)
                    status = CZlib.inflate(&stream, Z_NO_FLUSH)
                    guard status == Z_OK || status == Z_STREAM_END else {
                        throw SlideError(.corruptData, path, "the compressed data is damaged (zlib status \(status))")
                    }
                    output += out[0..<(out.count - Int(stream.avail_out))]
                }
                if output.count > 1 << 31 { throw SlideError(.corruptData, path, "the member inflates beyond 2 GB") }
            } while status != Z_STREAM_END && (stream.avail_in > 0 || stream.avail_out == 0)
        }
        guard status == Z_STREAM_END else { throw SlideError(.corruptData, path, "the compressed data ends early") }
        return output
    }
}
