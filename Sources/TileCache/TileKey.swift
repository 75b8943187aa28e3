import Foundation

/// Where a cached tile comes from: the source's identity, the fingerprint of the deterministic
/// stages' parameters, and the tile's level-0 origin and scale.
///
/// Encoded as 40 big-endian bytes (source, parameters, x, y, µm/px), so LMDB keeps one source's
/// records together and, inside it, one parameter set's — stale entries are a key range.
public struct TileKey: Hashable, Sendable, CustomStringConvertible {
    public var source: UInt64
    public var parameters: UInt64
    public var x: Int64
    public var y: Int64
    public var micronsPerPixel: Double

    public init(source: UInt64, parameters: UInt64, x: Int, y: Int, micronsPerPixel: Double) {
        (self.source, self.parameters, self.x, self.y, self.micronsPerPixel) = (source, parameters, Int64(x), Int64(y), micronsPerPixel)
    }

    public var bytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(40)
        for v in [source, parameters, UInt64(bitPattern: x) ^ (1 << 63), UInt64(bitPattern: y) ^ (1 << 63), micronsPerPixel.bitPattern] {
            for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8((v >> UInt64(shift)) & 0xFF)) }
        }
        return out
    }

    public init?(bytes raw: UnsafeRawBufferPointer) {
        guard raw.count == 40 else { return nil }
        func word(_ i: Int) -> UInt64 { (0..<8).reduce(UInt64(0)) { $0 << 8 | UInt64(raw[i * 8 + $1]) } }
        self.init(source: word(0), parameters: word(1), x: Int(Int64(bitPattern: word(2) ^ (1 << 63))),
                  y: Int(Int64(bitPattern: word(3) ^ (1 << 63))), micronsPerPixel: Double(bitPattern: word(4)))
    }

    public var description: String {
        String(format: "source %016llx params %016llx at (%lld, %lld) %.4g µm/px", source, parameters, x, y, micronsPerPixel)
    }
}

extension TileKey: Comparable {
    /// The order of the encoded keys (LMDB's): source, parameters, x, y, then µm/px's bits.
    public static func < (a: TileKey, b: TileKey) -> Bool {
        (a.source, a.parameters, a.x, a.y, a.micronsPerPixel.bitPattern) < (b.source, b.parameters, b.x, b.y, b.micronsPerPixel.bitPattern)
    }
}

/// Fingerprints that make cache keys.
public enum Fingerprint {
    /// A source file's identity: path, size and modification time. Hashing the content of a
    /// multi-gigabyte slide would cost more than reading its tiles; a rewritten or replaced file
    /// changes size or time, and then its old entries are simply not hit (and listed as stale).
    public static func source(path: String) throws -> UInt64 {
        try source(paths: [path])
    }

    /// A source kept in several files (a VMS index and its JPEG stripes, a MIRAX folder): every
    /// file's path, size and time, so a change to any of them is another source. One path gives
    /// `source(path:)`'s value.
    public static func source(paths: [String]) throws -> UInt64 {
        let identities = try paths.map { path in
            let attributes: [FileAttributeKey: Any]
            do { attributes = try FileManager.default.attributesOfItem(atPath: path) } catch {
                throw CacheError(.cannotOpen, path, "cannot read the source's size and date (\(error.localizedDescription))")
            }
            let size = (attributes[.size] as? NSNumber)?.int64Value ?? -1
            let modified = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            let canonical = URL(fileURLWithPath: path).standardizedFileURL.path
            return "\(canonical)|\(size)|\(modified)"
        }
        return XXHash64.hash(Array(identities.joined(separator: "\n").utf8))
    }

    /// Parameters of the deterministic stages, as `name=value` pairs (order-independent).
    public static func parameters(_ values: [String: String]) -> UInt64 {
        XXHash64.hash(Array(values.keys.sorted().map { "\($0)=\(values[$0]!)" }.joined(separator: "\n").utf8))
    }

    /// An ordered set of records (e.g. a training stage's tiles): a different tile, or the same
    /// tiles in another order, gives another value.
    public static func records<Keys: Collection>(_ keys: Keys) -> UInt64 where Keys.Element == TileKey {
        keys.reduce(UInt64(keys.count)) { hash, key in XXHash64.hash(key.bytes, seed: hash) }
    }
}
