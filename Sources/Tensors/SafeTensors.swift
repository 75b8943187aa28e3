import Diagnostics
import Foundation

/// Element types a safetensors file may hold here.
public enum SafeTensorsDType: String, Sendable, CaseIterable {
    case float64 = "F64", float32 = "F32", float16 = "F16", bfloat16 = "BF16", uint8 = "U8", int64 = "I64"

    public var byteWidth: Int {
        switch self {
        case .float64: 8
        case .float32: 4
        case .float16, .bfloat16: 2
        case .uint8: 1
        case .int64: 8
        }
    }
}

/// One named array of a safetensors file: its type, shape and raw little-endian bytes.
public struct SafeTensorsEntry: Sendable, Equatable {
    public var dtype: SafeTensorsDType
    public var shape: [Int]
    public var bytes: [UInt8]

    public init(dtype: SafeTensorsDType, shape: [Int], bytes: [UInt8]) {
        precondition(Tensor.count(of: shape) * dtype.byteWidth == bytes.count,
                     "\(dtype.rawValue) \(shape) needs \(Tensor.count(of: shape) * dtype.byteWidth) bytes, got \(bytes.count)")
        self.dtype = dtype
        self.shape = shape
        self.bytes = bytes
    }
}

/// A problem with a safetensors file, naming the file and what is wrong.
public struct SafeTensorsError: Problem, Equatable {
    public let source: String
    public let message: String
    public var kindName: String { "notSafetensors" }
    public var subject: String { source }
}

/// The safetensors format (as written by the Python `safetensors` package and PyTorch users):
///
///     [u64 little-endian N][N bytes of JSON header, space-padded][data]
///     header: {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, …,
///              "__metadata__": {"key": "value"}}
///
/// Offsets are relative to the start of the data section. Files written here list tensors in
/// name order, packed without gaps, with the header padded to a multiple of 8 bytes, so the
/// same content always serialises to the same bytes.
public struct SafeTensorsFile: Sendable, Equatable {
    public var metadata: [String: String] = [:]
    public var entries: [String: SafeTensorsEntry] = [:]

    public init() {}

    public init(contentsOf url: URL) throws {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw SafeTensorsError(source: url.path, message: "cannot read the file (\(error.localizedDescription))")
        }
        try self.init(bytes: [UInt8](data), source: url.path)
    }

    /// Parses a whole file's bytes; `source` names the file in errors.
    public init(bytes: [UInt8], source: String) throws {
        func fail(_ message: String) -> SafeTensorsError { SafeTensorsError(source: source, message: message) }
        guard bytes.count >= 8 else { throw fail("too short to be a safetensors file (\(bytes.count) bytes)") }
        var headerLength = 0
        for i in (0..<8).reversed() { headerLength = headerLength << 8 | Int(bytes[i]) }
        guard headerLength >= 2, headerLength <= bytes.count - 8, headerLength <= 100_000_000 else {
            throw fail("header length \(headerLength) does not fit a file of \(bytes.count) bytes: not a safetensors file, or truncated")
        }
        let dataStart = 8 + headerLength
        let json: Any
        do { json = try JSONSerialization.jsonObject(with: Data(bytes[8..<dataStart])) } catch {
            throw fail("the header is not valid JSON")
        }
        guard let header = json as? [String: Any] else { throw fail("the header is not a JSON object") }
        let dataLength = bytes.count - dataStart
        for (name, value) in header {
            if name == "__metadata__" {
                guard let table = value as? [String: String] else { throw fail("__metadata__ must map strings to strings") }
                metadata = table
                continue
            }
            guard let info = value as? [String: Any],
                  let typeName = info["dtype"] as? String,
                  let shape = info["shape"] as? [Int],
                  let offsets = info["data_offsets"] as? [Int], offsets.count == 2 else {
                throw fail("tensor '\(name)' needs dtype, shape and two data_offsets")
            }
            guard let dtype = SafeTensorsDType(rawValue: typeName) else {
                throw fail("tensor '\(name)' has dtype \(typeName); supported: \(SafeTensorsDType.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard shape.allSatisfy({ $0 >= 0 }) else { throw fail("tensor '\(name)' has a negative extent in \(shape)") }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin >= 0, begin <= end, end <= dataLength else {
                throw fail("tensor '\(name)' has offsets \(begin)…\(end) outside the \(dataLength)-byte data section (truncated file?)")
            }
            let expected = Tensor.count(of: shape) * dtype.byteWidth
            guard end - begin == expected else {
                throw fail("tensor '\(name)' is \(typeName) \(shape), \(expected) bytes, but its offsets span \(end - begin)")
            }
            entries[name] = SafeTensorsEntry(dtype: dtype, shape: shape,
                                             bytes: Array(bytes[(dataStart + begin)..<(dataStart + end)]))
        }
    }

    /// The file's bytes: header in name order, data packed in the same order.
    public func serialized() -> [UInt8] {
        var header: [String: Any] = [:]
        var offset = 0
        let names = entries.keys.sorted()
        for name in names {
            let entry = entries[name]!
            header[name] = ["dtype": entry.dtype.rawValue, "shape": entry.shape,
                            "data_offsets": [offset, offset + entry.bytes.count]] as [String: Any]
            offset += entry.bytes.count
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        // Only strings, integers and arrays of them: serialisation cannot fail.
        var json = [UInt8](try! JSONSerialization.data(withJSONObject: header, options: [.sortedKeys, .withoutEscapingSlashes]))
        while (8 + json.count) % 8 != 0 { json.append(0x20) }
        var out = [UInt8]()
        out.reserveCapacity(8 + json.count + offset)
        var length = UInt64(json.count)
        for _ in 0..<8 { out.append(UInt8(length & 0xFF)); length >>= 8 }
        out += json
        for name in names { out += entries[name]!.bytes }
        return out
    }

    /// Writes the file atomically: a temporary file beside the target, then a rename, so a crash
    /// never leaves a half-written checkpoint under the real name.
    public func write(to url: URL) throws {
        let temporary = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).\(ProcessInfo.processInfo.processIdentifier).tmp")
        do {
            try Data(serialized()).write(to: temporary)
            guard rename(temporary.path, url.path) == 0 else {
                throw SafeTensorsError(source: url.path, message: "cannot rename the temporary file into place (errno \(errno))")
            }
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw SafeTensorsError(source: url.path, message: "cannot write the file (\(error.localizedDescription))")
        }
    }

    // MARK: typed access

    /// The named array converted to `Float` (F32, F16, BF16 and U8 convert exactly; F64 and I64
    /// round to the nearest Float).
    public func tensor(_ name: String) throws -> Tensor {
        guard let entry = entries[name] else {
            throw SafeTensorsError(source: name, message: "no tensor of this name; the file has: \(entries.keys.sorted().joined(separator: ", "))")
        }
        var result = Tensor(zeros: entry.shape)
        entry.bytes.withUnsafeBytes { raw in
            result.withUnsafeMutableBufferPointer { out in
                switch entry.dtype {
                case .float64:
                    for i in out.indices { out[i] = Float(Double(bitPattern: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self).littleEndian)) }
                case .float32:
                    for i in out.indices { out[i] = Float(bitPattern: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self).littleEndian) }
                case .float16:
                    StorageConversion.floats(fromHalves: raw.bindMemory(to: UInt16.self), into: out)
                case .bfloat16:
                    StorageConversion.floats(fromBFloat16s: raw.bindMemory(to: UInt16.self), into: out)
                case .uint8:
                    StorageConversion.floats(fromBytes: raw.bindMemory(to: UInt8.self), into: out)
                case .int64:
                    for i in out.indices { out[i] = Float(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self))) }
                }
            }
        }
        return result
    }

    /// The named I64 array as integers.
    public func int64s(_ name: String) throws -> [Int64] {
        guard let entry = entries[name], entry.dtype == .int64 else {
            throw SafeTensorsError(source: name, message: "no I64 tensor of this name")
        }
        return entry.bytes.withUnsafeBytes { raw in
            (0..<(entry.bytes.count / 8)).map { Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self)) }
        }
    }

    /// Stores a tensor as F64 or F32 (exact), F16 or BF16 (rounded to nearest even), U8 (rounded,
    /// clamped) or I64 (truncated).
    public mutating func set(_ name: String, _ tensor: Tensor, as dtype: SafeTensorsDType = .float32) {
        var bytes = [UInt8](repeating: 0, count: tensor.count * dtype.byteWidth)
        tensor.withUnsafeBufferPointer { x in
            bytes.withUnsafeMutableBytes { raw in
                switch dtype {
                case .float64:
                    for i in x.indices { raw.storeBytes(of: Double(x[i]).bitPattern.littleEndian, toByteOffset: 8 * i, as: UInt64.self) }
                case .float32:
                    for i in x.indices { raw.storeBytes(of: x[i].bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self) }
                case .float16:
                    StorageConversion.halves(fromFloats: x, into: raw.bindMemory(to: UInt16.self))
                case .bfloat16:
                    StorageConversion.bfloat16s(fromFloats: x, into: raw.bindMemory(to: UInt16.self))
                case .uint8:
                    StorageConversion.bytes(fromFloats: x, into: raw.bindMemory(to: UInt8.self))
                case .int64:
                    for i in x.indices { raw.storeBytes(of: Int64(x[i]).littleEndian, toByteOffset: 8 * i, as: Int64.self) }
                }
            }
        }
        entries[name] = SafeTensorsEntry(dtype: dtype, shape: tensor.shape, bytes: bytes)
    }

    /// Stores integers as I64.
    public mutating func set(_ name: String, int64s values: [Int64], shape: [Int]) {
        var bytes = [UInt8](repeating: 0, count: values.count * 8)
        bytes.withUnsafeMutableBytes { raw in
            for (i, v) in values.enumerated() { raw.storeBytes(of: v.littleEndian, toByteOffset: 8 * i, as: Int64.self) }
        }
        entries[name] = SafeTensorsEntry(dtype: .int64, shape: shape, bytes: bytes)
    }
}
