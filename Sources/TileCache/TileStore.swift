import CZstd
import Foundation
import Tensors

/// The on-disk tile cache: an LMDB environment of `TileRecord`s under `TileKey`s.
///
/// Writes compress outside the write transaction, then store a batch in one transaction with
/// skip-if-present, so a warm-up is resumable and a crash leaves only whole, committed records.
/// Reads verify each record's checksum; a corrupt record is reported (`CacheError.corruptRecord`),
/// never returned.
public final class TileStore: @unchecked Sendable {
    public let environment: LMDBEnvironment
    public let codec: TileRecord.Codec
    public var path: String { environment.path }

    public init(path: String, readOnly: Bool = false, codec: TileRecord.Codec = .zstd) throws {
        environment = try LMDBEnvironment(path: path, readOnly: readOnly)
        self.codec = codec
    }

    /// Stores tiles not already present; returns how many were new.
    @discardableResult
    public func write(_ tiles: [(key: TileKey, tile: CachedTile)]) throws -> Int {
        let compressor = ZSTD_createCCtx()
        defer { ZSTD_freeCCtx(compressor) }
        let pairs = tiles.map { (key: $0.key.bytes, value: TileRecord.encode($0.tile, codec: codec, compressor: compressor)) }
        return try environment.put(pairs)
    }

    public func contains(_ key: TileKey) throws -> Bool {
        try environment.read { try $0.get(key.bytes) != nil }
    }

    /// The tile under `key` (nil when absent); throws `corruptRecord` for a damaged record.
    public func read(_ key: TileKey) throws -> CachedTile? {
        try environment.read { txn in
            guard let record = try txn.get(key.bytes) else { return nil }
            return try TileRecord.decode(record, key: key.description, path: path, expected: key)
        }
    }

    /// What a look-up of one key found.
    public enum Lookup: Sendable {
        case found(CachedTile)
        case missing
        /// The record is damaged; the reason names it and says what to do.
        case corrupt(String)
    }

    /// The tiles under `keys`, in order, read in one transaction (a training batch's worth); the
    /// map pages read are released afterwards, so streaming epochs keeps memory flat.
    public func read(_ keys: [TileKey]) throws -> [Lookup] {
        let decompressor = ZSTD_createDCtx()
        defer { ZSTD_freeDCtx(decompressor) }
        return try environment.read(releasingPages: true) { txn in
            try keys.map { key in
                guard let record = try txn.get(key.bytes) else { return .missing }
                do { return .found(try TileRecord.decode(record, key: key.description, path: path, expected: key, decompressor: decompressor)) } catch let error as CacheError {
                    return .corrupt(error.message)
                }
            }
        }
    }

    /// A model-ready batch: tiles as float32 NCHW (de-interleaved from the records' pixel layout),
    /// each channel mapped to (v/255 − mean)/std. Absent and corrupt keys are listed (and their
    /// slots left zero), never hidden.
    public func batch(_ keys: [TileKey], mean: [Float], std: [Float]) throws -> (images: Tensor, missing: [TileKey], corrupt: [(TileKey, String)]) {
        var images = Tensor(zeros: [0])
        let (missing, corrupt) = try batch(keys, mean: mean, std: std, into: &images)
        return (images, missing, corrupt)
    }

    /// The same into `images`, reusing its storage when the shape already fits (a data loader
    /// keeps one buffer per worker: fresh 38 MB batches cost more in page faults than in decoding).
    public func batch(_ keys: [TileKey], mean: [Float], std: [Float], into images: inout Tensor) throws -> (missing: [TileKey], corrupt: [(TileKey, String)]) {
        var missing: [TileKey] = [], corrupt: [(TileKey, String)] = []
        let decompressor = ZSTD_createDCtx()
        defer { ZSTD_freeDCtx(decompressor) }
        var scratch: [UInt8] = []
        var shaped = false
        let scales = zip(mean, std).map { 1 / (255 * $0.1) }, offsets = zip(mean, std).map { -$0.0 / $0.1 }
        try environment.read { txn in
            for (index, key) in keys.enumerated() {
                guard let record = try txn.get(key.bytes) else { missing.append(key); continue }
                let name = key.description
                do {
                    let (header, payload) = try TileRecord.open(record, key: name, path: path, expected: key)
                    precondition(mean.count == header.channels && std.count == header.channels, "mean/std need one value per channel")
                    let shape = [keys.count, header.channels, header.height, header.width]
                    if !shaped {
                        if images.shape != shape { images = Tensor(zeros: shape) } else {
                            images.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
                        }
                        shaped = true
                    }
                    guard images.shape == shape else {
                        corrupt.append((key, "shape \(header.channels)×\(header.height)×\(header.width) differs from the batch's"))
                        continue
                    }
                    if scratch.count != header.rawLength { scratch = [UInt8](repeating: 0, count: header.rawLength) }
                    try scratch.withUnsafeMutableBytes { try TileRecord.unpack(header, payload, into: $0, key: name, path: path, decompressor: decompressor) }
                    let size = header.channels * header.height * header.width
                    scratch.withUnsafeBufferPointer { src in
                        images.withUnsafeMutableBufferPointer { dst in
                            StorageConversion.planarFloats(fromInterleaved: src, channels: header.channels, scales: scales, offsets: offsets,
                                                           into: UnsafeMutableBufferPointer(rebasing: dst[(index * size)..<((index + 1) * size)]))
                        }
                    }
                } catch let error as CacheError {
                    corrupt.append((key, error.message))
                }
            }
        }
        return (missing, corrupt)
    }

    // MARK: inspection

    public struct Statistics: Sendable {
        public var records = 0
        public var storedBytes = 0
        public var rawBytes = 0
        public var perSource: [UInt64: Int] = [:]
        public var perParameters: [UInt64: Int] = [:]
        public var compressionRatio: Double { storedBytes == 0 ? 0 : Double(rawBytes) / Double(storedBytes) }
    }

    public func statistics() throws -> Statistics {
        var stats = Statistics()
        try environment.read { txn in
            try txn.forEach { key, value in
                stats.records += 1
                stats.storedBytes += value.count
                if value.count >= TileRecord.headerSize {
                    stats.rawBytes += Int(value.loadUnaligned(fromByteOffset: 72, as: UInt32.self).littleEndian)
                }
                if let k = TileKey(bytes: key) {
                    stats.perSource[k.source, default: 0] += 1
                    stats.perParameters[k.parameters, default: 0] += 1
                }
            }
        }
        return stats
    }

    /// Removes the damaged records (the ones `verify` lists), so that the next run of the flow or
    /// warm-up writes them again (writes skip present keys, damaged or not); returns how many.
    @discardableResult
    public func removeDamaged() throws -> Int {
        try environment.delete(damagedRecords().map(\.key))
    }

    /// Decodes every record and checks every checksum, that each record is its key's and that the
    /// page header in front of it is intact; returns the damaged ones with reasons. (The file's
    /// structure was checked when the cache was opened.)
    public func verify() throws -> [(key: String, reason: String)] {
        try damagedRecords().map { (TileKey(bytes: $0.key.withUnsafeBytes { $0 })?.description ?? "undecodable key \($0.key.prefix(8))…", $0.reason) }
    }

    private func damagedRecords() throws -> [(key: [UInt8], reason: String)] {
        var damaged: [(key: [UInt8], reason: String)] = []
        let decompressor = ZSTD_createDCtx()
        defer { ZSTD_freeDCtx(decompressor) }
        try environment.read(releasingPages: true) { txn in
            try txn.forEach { key, value in
                guard let tileKey = TileKey(bytes: key) else {
                    damaged.append((Array(key), "the key is \(key.count) bytes, not a tile key's 40"))
                    return
                }
                if let problem = txn.overflowHeaderDamage(value) {
                    damaged.append((Array(key), "record \(tileKey) is damaged (\(problem))"))
                    return
                }
                do { _ = try TileRecord.decode(value, key: tileKey.description, path: path, expected: tileKey, decompressor: decompressor) } catch let error as CacheError {
                    damaged.append((Array(key), error.message))
                }
            }
        }
        return damaged
    }

    /// Removes every record whose parameter fingerprint is not `current`; returns the count.
    @discardableResult
    public func removeStale(keeping current: UInt64) throws -> Int {
        var stale: [[UInt8]] = []
        try environment.read { txn in
            try txn.forEach { key, _ in
                if let k = TileKey(bytes: key), k.parameters != current { stale.append(Array(key)) }
            }
        }
        return try environment.delete(stale)
    }
}

extension TileStore {
    /// Copies every record of `other` that this cache lacks (records are copied as stored, after
    /// their checksum is verified; damaged ones are reported, not copied). Returns (copied, damaged).
    public func merge(from other: TileStore) throws -> (copied: Int, damaged: [String]) {
        var pairs: [(key: [UInt8], value: [UInt8])] = []
        var damaged: [String] = []
        var copied = 0
        try other.environment.read { txn in
            try txn.forEach { key, value in
                let name = TileKey(bytes: key)?.description ?? "undecodable key"
                do {
                    guard let tileKey = TileKey(bytes: key) else { throw CacheError(.corruptRecord, other.path, "\(name) is not a tile key") }
                    _ = try TileRecord.decode(value, key: name, path: other.path, expected: tileKey)
                    pairs.append((Array(key), Array(value)))
                } catch let error as CacheError {
                    damaged.append("\(name): \(error.message)")
                }
                if pairs.count == 256 {
                    copied += try environment.put(pairs)
                    pairs.removeAll(keepingCapacity: true)
                }
            }
        }
        copied += try environment.put(pairs)
        return (copied, damaged)
    }
}
