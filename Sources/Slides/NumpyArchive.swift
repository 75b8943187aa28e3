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
        let count = shape[0] * shape[1]
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

    /// The bytes of one member of a zip archive (stored or deflated), found by walking the local
    /// headers; a deflated member is inflated until its stream ends (so sizes deferred to a data
    /// descriptor or ZIP64 field are not needed).
    static func unzip(_ bytes: [UInt8], member: String?, path: String) throws -> [UInt8] {
        var offset = 0
        var names: [String] = []
        func u16(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 }
        func u32(_ at: Int) -> Int { u16(at) | u16(at + 2) << 16 }
        while offset + 30 <= bytes.count, u32(offset) == 0x0403_4B50 {
            let method = u16(offset + 8), flags = u16(offset + 6)
            let compressed = u32(offset + 18)
            let nameLength = u16(offset + 26), extraLength = u16(offset + 28)
            guard offset + 30 + nameLength <= bytes.count else { break }
            let name = String(decoding: bytes[(offset + 30)..<(offset + 30 + nameLength)], as: UTF8.self)
            names.append(name)
            let dataStart = offset + 30 + nameLength + extraLength
            if member == nil || member == name || member.map({ $0 + ".npy" }) == name {
                switch method {
                case 0: return Array(bytes[dataStart..<min(bytes.count, dataStart + compressed)])
                case 8: return try inflate(bytes, from: dataStart, path: path)
                default: throw SlideError(.notSupported, path, "zip member \(name) uses compression method \(method); only stored and deflate are supported")
                }
            }
            guard flags & 0x08 == 0, compressed != 0xFFFF_FFFF else {
                throw SlideError(.notSupported, path, "cannot skip zip member \(name) (its size is deferred); name the first member or repack the archive")
            }
            offset = dataStart + compressed
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
