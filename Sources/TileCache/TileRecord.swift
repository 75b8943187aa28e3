import CZstd
import Foundation

/// One cached tile: 8-bit pixels in `TileRecord.PixelLayout.interleaved` order (rows top to bottom,
/// each pixel's channels together, as `RGBImage` holds them) and where they came from.
public struct CachedTile: Sendable, Equatable {
    public var channels: Int, height: Int, width: Int
    public var pixels: [UInt8]
    public var level0Origin: (x: Int, y: Int)
    public var requestedMicronsPerPixel: Double
    public var effectiveMicronsPerPixel: Double
    public var source: UInt64
    public var parameters: UInt64

    public init(channels: Int, height: Int, width: Int, pixels: [UInt8], level0Origin: (x: Int, y: Int),
                requestedMicronsPerPixel: Double, effectiveMicronsPerPixel: Double, source: UInt64, parameters: UInt64) {
        precondition(pixels.count == channels * height * width, "tile pixels do not match \(channels)×\(height)×\(width)")
        (self.channels, self.height, self.width, self.pixels) = (channels, height, width, pixels)
        (self.level0Origin, self.requestedMicronsPerPixel, self.effectiveMicronsPerPixel) = (level0Origin, requestedMicronsPerPixel, effectiveMicronsPerPixel)
        (self.source, self.parameters) = (source, parameters)
    }

    public static func == (a: CachedTile, b: CachedTile) -> Bool {
        a.channels == b.channels && a.height == b.height && a.width == b.width && a.pixels == b.pixels
            && a.level0Origin == b.level0Origin && a.requestedMicronsPerPixel == b.requestedMicronsPerPixel
            && a.effectiveMicronsPerPixel == b.effectiveMicronsPerPixel && a.source == b.source && a.parameters == b.parameters
    }
}

/// The record codec:
///
///     "SSMT" · version u16 · codec u8 (0 none, 1 zstd) · pixel layout u8 (0 = interleaved uint8)
///     channels, height, width u32 · level-0 x, y i64 · requested, effective µm/px f64
///     source, parameter fingerprints u64 · stored length, raw length u32
///     checksum u64 = XXH64(stored payload, seed: XXH64(everything above))   (84 bytes, little-endian)
///     payload (zstd level 1 frame, or the raw pixel bytes in the record's layout)
///
/// A record whose checksum, lengths or magic do not hold is corrupt and is never decoded.
public enum TileRecord {
    public enum Codec: UInt8, Sendable { case none = 0, zstd = 1 }

    /// How a record's pixel bytes are ordered: the one contract between the writers (the cache
    /// stage, warm-ups, merges) and the readers (tiles read back, model-ready batches, training
    /// streams). Written in every record's header; a reader refuses a layout it does not know.
    public enum PixelLayout: UInt8, Sendable {
        /// 8 bits per channel, rows top to bottom, each pixel's channels together (R, G, B, …):
        /// byte `(y · width + x) · channels + c`. The layout of `RGBImage` and of every decoder.
        case interleaved = 0
    }

    /// The layout every writer uses.
    public static let layout = PixelLayout.interleaved

    static let magic: [UInt8] = Array("SSMT".utf8)
    static let version: UInt16 = 1
    static let headerSize = 84

    public static func encode(_ tile: CachedTile, codec: Codec, compressor: OpaquePointer? = nil) -> [UInt8] {
        var payload: [UInt8]
        switch codec {
        case .none:
            payload = tile.pixels
        case .zstd:
            let bound = ZSTD_compressBound(tile.pixels.count)
            payload = [UInt8](repeating: 0, count: bound)
            let written = tile.pixels.withUnsafeBytes { src in
                payload.withUnsafeMutableBytes { dst in
                    if let compressor {
                        return ZSTD_compressCCtx(compressor, dst.baseAddress, bound, src.baseAddress, src.count, 1)
                    }
                    return ZSTD_compress(dst.baseAddress, bound, src.baseAddress, src.count, 1)
                }
            }
            // Compressing into a buffer of compressBound bytes cannot fail.
            payload.removeLast(bound - written)
        }
        var out = [UInt8]()
        out.reserveCapacity(headerSize + payload.count)
        out += magic
        append(&out, version)
        out.append(codec.rawValue)
        out.append(layout.rawValue)
        append(&out, UInt32(tile.channels)); append(&out, UInt32(tile.height)); append(&out, UInt32(tile.width))
        append(&out, Int64(tile.level0Origin.x)); append(&out, Int64(tile.level0Origin.y))
        append(&out, tile.requestedMicronsPerPixel.bitPattern); append(&out, tile.effectiveMicronsPerPixel.bitPattern)
        append(&out, tile.source); append(&out, tile.parameters)
        append(&out, UInt32(payload.count)); append(&out, UInt32(tile.pixels.count))
        let checksum = payload.withUnsafeBytes { XXHash64.hash($0, seed: XXHash64.hash(out)) }
        append(&out, checksum)
        out += payload
        return out
    }

    /// What a record's header says, after its checks passed.
    struct Header {
        let codec: Codec
        let channels: Int, height: Int, width: Int
        let rawLength: Int
    }

    /// Checks magic, version, lengths and checksum, and with `expected` that the record describes
    /// the tile its key names (source, parameters, level-0 origin, requested µm/px: a damaged key
    /// must not hand one tile's pixels out under another's position); returns the header and the
    /// stored payload.
    static func open(_ record: UnsafeRawBufferPointer, key: String, path: String, expected: TileKey? = nil) throws -> (Header, UnsafeRawBufferPointer) {
        func corrupt(_ why: String) -> CacheError { CacheError(.corruptRecord, path, "record \(key) is corrupt (\(why)); it is skipped. Run `ssmamba cache verify --repair \(path)`, then the flow or warm-up again, to rewrite it") }
        guard record.count >= headerSize else { throw corrupt("only \(record.count) bytes") }
        guard record[0] == magic[0], record[1] == magic[1], record[2] == magic[2], record[3] == magic[3] else { throw corrupt("bad magic") }
        func u32(_ o: Int) -> Int { Int(record.loadUnaligned(fromByteOffset: o, as: UInt32.self).littleEndian) }
        guard record.loadUnaligned(fromByteOffset: 4, as: UInt16.self).littleEndian == version else { throw corrupt("unknown format version") }
        guard let codec = Codec(rawValue: record[6]) else { throw corrupt("unknown codec") }
        guard PixelLayout(rawValue: record[7]) != nil else { throw corrupt("unknown pixel layout \(record[7]); written by a newer SSMamba?") }
        let (channels, height, width) = (u32(8), u32(12), u32(16))
        let storedLength = u32(68), rawLength = u32(72)
        guard record.count == headerSize + storedLength, rawLength == channels * height * width, rawLength <= 1 << 28,
              codec == .zstd || storedLength == rawLength else {
            throw corrupt("lengths do not agree")
        }
        let payload = UnsafeRawBufferPointer(rebasing: record[headerSize...])
        let checksum = record.loadUnaligned(fromByteOffset: 76, as: UInt64.self).littleEndian
        guard XXHash64.hash(payload, seed: XXHash64.hash(UnsafeRawBufferPointer(rebasing: record[0..<76]))) == checksum else {
            throw corrupt("checksum mismatch")
        }
        if let expected {
            func u64(_ o: Int) -> UInt64 { record.loadUnaligned(fromByteOffset: o, as: UInt64.self).littleEndian }
            guard u64(52) == expected.source, u64(60) == expected.parameters, Int64(bitPattern: u64(20)) == expected.x,
                  Int64(bitPattern: u64(28)) == expected.y, u64(36) == expected.micronsPerPixel.bitPattern else {
                throw corrupt("it describes another tile than its key names")
            }
        }
        return (Header(codec: codec, channels: channels, height: height, width: width, rawLength: rawLength), payload)
    }

    /// The pixels of an opened record into `target` (exactly `rawLength` bytes).
    static func unpack(_ header: Header, _ payload: UnsafeRawBufferPointer, into target: UnsafeMutableRawBufferPointer,
                       key: String, path: String, decompressor: OpaquePointer?) throws {
        switch header.codec {
        case .none:
            target.copyMemory(from: payload)
        case .zstd:
            let produced = decompressor.map { ZSTD_decompressDCtx($0, target.baseAddress, header.rawLength, payload.baseAddress, payload.count) }
                ?? ZSTD_decompress(target.baseAddress, header.rawLength, payload.baseAddress, payload.count)
            guard ZSTD_isError(produced) == 0, produced == header.rawLength else {
                throw CacheError(.corruptRecord, path, "record \(key) is corrupt (zstd payload does not decode); it is skipped. Run `ssmamba cache verify \(path)`")
            }
        }
    }

    /// Decodes a record; `key` names it in errors; with `expected`, the record must be that key's.
    public static func decode(_ record: UnsafeRawBufferPointer, key: String, path: String, expected: TileKey? = nil,
                              decompressor: OpaquePointer? = nil) throws -> CachedTile {
        let (header, payload) = try open(record, key: key, path: path, expected: expected)
        var pixels = [UInt8](repeating: 0, count: header.rawLength)
        try pixels.withUnsafeMutableBytes { try unpack(header, payload, into: $0, key: key, path: path, decompressor: decompressor) }
        func u64(_ o: Int) -> UInt64 { record.loadUnaligned(fromByteOffset: o, as: UInt64.self).littleEndian }
        return CachedTile(channels: header.channels, height: header.height, width: header.width, pixels: pixels,
                          level0Origin: (Int(Int64(bitPattern: u64(20))), Int(Int64(bitPattern: u64(28)))),
                          requestedMicronsPerPixel: Double(bitPattern: u64(36)), effectiveMicronsPerPixel: Double(bitPattern: u64(44)),
                          source: u64(52), parameters: u64(60))
    }

    static func append<T: FixedWidthInteger>(_ out: inout [UInt8], _ value: T) {
        withUnsafeBytes(of: value.littleEndian) { out += $0 }
    }
}
