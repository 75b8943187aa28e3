import Foundation
import Randomness
import Tensors
import TileCache
import XCTest

/// A deterministic tile for index i: smooth ramps with sparse noise (compressible, as tissue is).
func syntheticTile(_ i: Int, side: Int = 64, parameters: UInt64 = 7) -> (key: TileKey, tile: CachedTile) {
    var rng = RandomGenerator(seed: UInt64(i) + 1000)
    let pixels = (0..<(3 * side * side)).map { p in
        rng.integer(below: 8) == 0 ? UInt8(rng.integer(below: 256)) : UInt8((p / side + i) & 0xFF)
    }
    let key = TileKey(source: 42, parameters: parameters, x: i * side, y: -i, micronsPerPixel: 0.5)
    return (key, CachedTile(channels: 3, height: side, width: side, pixels: pixels, level0Origin: (i * side, -i),
                            requestedMicronsPerPixel: 0.5, effectiveMicronsPerPixel: 0.499, source: 42, parameters: parameters))
}

func temporaryDirectory(_ name: String) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("ssmamba-\(name)-\(UUID())")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

final class TileCacheTests: XCTestCase {
    func testChecksumKnownAnswers() {
        // xxHash's XXH64 (seed 0), as computed by the Python `xxhash` package.
        XCTAssertEqual(TileStoreTestHooks.xxh64(Array("".utf8)), 0xEF46_DB37_51D8_E999)
        XCTAssertEqual(TileStoreTestHooks.xxh64(Array("a".utf8)), 0xD24E_C4F1_A98C_6E5B)
        XCTAssertEqual(TileStoreTestHooks.xxh64(Array("abc".utf8)), 0x44BC_2CF5_AD77_0999)
        XCTAssertEqual(TileStoreTestHooks.xxh64(Array(0..<100)), 0x6AC1_E580_3216_6597)
    }

    func testKeysRoundTripAndSortBySourceThenParameters() {
        let key = TileKey(source: 5, parameters: 9, x: -3, y: 123_456, micronsPerPixel: 0.25)
        let bytes = key.bytes
        XCTAssertEqual(bytes.count, 40)
        XCTAssertEqual(bytes.withUnsafeBytes { TileKey(bytes: $0) }, key)
        let later = TileKey(source: 5, parameters: 10, x: -100, y: 0, micronsPerPixel: 0.25)
        XCTAssertTrue(bytes.lexicographicallyPrecedes(later.bytes))
        let negative = TileKey(source: 5, parameters: 9, x: -4, y: 0, micronsPerPixel: 0.25)
        XCTAssertTrue(negative.bytes.lexicographicallyPrecedes(bytes), "x = −4 sorts before x = −3")
        for (a, b) in [(negative, key), (key, later), (negative, later)] {
            XCTAssertTrue(a < b && !(b < a), "Comparable follows the encoded order")
        }
    }

    func testWriteReadSkipIfPresentAndBothCodecs() throws {
        for codec in [TileRecord.Codec.zstd, .none] {
            let directory = try temporaryDirectory("cache")
            defer { try? FileManager.default.removeItem(at: directory) }
            let store = try TileStore(path: directory.path, codec: codec)
            let tiles = (0..<20).map { syntheticTile($0) }
            XCTAssertEqual(try store.write(tiles), 20)
            XCTAssertEqual(try store.write(Array(tiles[10...]) + [syntheticTile(20)]), 1, "present tiles are skipped")
            for (key, tile) in tiles { XCTAssertEqual(try store.read(key), tile) }
            XCTAssertNil(try store.read(syntheticTile(99).key))
            let stats = try store.statistics()
            XCTAssertEqual(stats.records, 21)
            XCTAssertEqual(stats.perSource[42], 21)
            XCTAssertEqual(stats.rawBytes, 21 * 3 * 64 * 64)
            if codec == .zstd { XCTAssertGreaterThan(stats.compressionRatio, 1.2) } else { XCTAssertLessThan(stats.compressionRatio, 1) }
            XCTAssertEqual(try store.verify().count, 0)
        }
    }

    func testMapGrowsWhenFull() throws {
        let directory = try temporaryDirectory("grow")
        defer { try? FileManager.default.removeItem(at: directory) }
        let environment = try LMDBEnvironment(path: directory.path, initialMapSize: 1 << 20)
        let before = environment.mapSize
        let value = [UInt8](repeating: 7, count: 100_000)
        for batch in 0..<10 {
            try environment.put((0..<5).map { i in (key: Array("k\(batch)-\(i)".utf8), value: value) })
        }
        XCTAssertGreaterThan(environment.mapSize, before)
        XCTAssertEqual(try environment.read { $0.count }, 50)
    }

    func testBatchesAreNormalisedNCHWAndReportMissingAndCorrupt() throws {
        let directory = try temporaryDirectory("batch")
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try TileStore(path: directory.path)
        let tiles = (0..<4).map { syntheticTile($0, side: 16) }
        try store.write(tiles)
        // Damage tile 2's record in place (same length, one byte of payload changed).
        var record = try store.environment.read { Array(try XCTUnwrap(try $0.get(tiles[2].key.bytes))) }
        record[record.count - 3] ^= 0x55
        try store.environment.put([(key: tiles[2].key.bytes, value: record)], overwrite: true)
        let mean: [Float] = [0.5, 0.4, 0.3], std: [Float] = [0.2, 0.25, 0.3]
        let absent = syntheticTile(50, side: 16).key
        let (images, missing, corrupt) = try store.batch(tiles.map(\.key) + [absent], mean: mean, std: std)
        XCTAssertEqual(images.shape, [5, 3, 16, 16])
        XCTAssertEqual(missing, [absent])
        XCTAssertEqual(corrupt.map(\.0), [tiles[2].key])
        XCTAssertThrowsError(try store.read(tiles[2].key)) { error in
            XCTAssertEqual((error as? CacheError)?.kind, .corruptRecord)
        }
        XCTAssertEqual(try store.verify().count, 1)
        for b in [0, 1, 3] {
            for (c, y, x) in [(0, 0, 0), (1, 5, 9), (2, 15, 15)] {
                let raw = Float(tiles[b].tile.pixels[(y * 16 + x) * 3 + c])  // records are interleaved
                XCTAssertEqual(images[b, c, y, x], (raw / 255 - mean[c]) / std[c], accuracy: 1e-5)
            }
        }
    }

    func testRecordsStateTheirPixelLayoutAndUnknownLayoutsAreRefused() throws {
        let (key, tile) = syntheticTile(3, side: 8)
        var record = TileRecord.encode(tile, codec: .zstd)
        XCTAssertEqual(record[7], TileRecord.PixelLayout.interleaved.rawValue, "the header names the layout")
        let decoded = try record.withUnsafeBytes { try TileRecord.decode($0, key: key.description, path: "cache") }
        XCTAssertEqual(decoded, tile)
        record[7] = 9
        XCTAssertThrowsError(try record.withUnsafeBytes { try TileRecord.decode($0, key: key.description, path: "cache") }) { error in
            XCTAssertEqual((error as? CacheError)?.kind, .corruptRecord)
            XCTAssertTrue("\(error)".contains("unknown pixel layout 9"), "\(error)")
        }
    }

    /// A data.mdb that is not an LMDB file: a typed error naming the cache, not a double free
    /// (the handle was closed after the failed open and again when the object went away).
    func testAGarbageCacheFileIsATypedError() throws {
        let directory = try temporaryDirectory("garbage")
        defer { try? FileManager.default.removeItem(at: directory) }
        var rng = RandomGenerator(seed: 5)
        try Data((0..<16_384).map { _ in UInt8(rng.integer(below: 256)) }).write(to: directory.appendingPathComponent("data.mdb"))
        for readOnly in [true, false] {
            XCTAssertThrowsError(try TileStore(path: directory.path, readOnly: readOnly)) { error in
                XCTAssertEqual((error as? CacheError)?.kind, .damaged)
                XCTAssertTrue("\(error)".contains(directory.path), "\(error)")
            }
        }
    }

    /// Writes skip present keys, so a damaged record stays until removed; then it is rewritten.
    func testDamagedRecordsAreRemovedAndRewritten() throws {
        let directory = try temporaryDirectory("repair")
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try TileStore(path: directory.path)
        let tiles = (0..<5).map { syntheticTile($0, side: 8) }
        try store.write(tiles)
        var record = try store.environment.read { Array(try XCTUnwrap(try $0.get(tiles[1].key.bytes))) }
        record[record.count - 1] ^= 0x10
        try store.environment.put([(key: tiles[1].key.bytes, value: record)], overwrite: true)
        XCTAssertEqual(try store.write([tiles[1]]), 0, "present (if damaged): not rewritten")
        XCTAssertEqual(try store.verify().count, 1)
        XCTAssertEqual(try store.removeDamaged(), 1)
        XCTAssertEqual(try store.statistics().records, 4)
        XCTAssertEqual(try store.write(tiles), 1, "the removed record is written again")
        XCTAssertTrue(try store.verify().isEmpty)
        XCTAssertEqual(try store.read(tiles[1].key), tiles[1].tile)
    }

    func testStaleEntriesAreListedAndRemoved() throws {
        let directory = try temporaryDirectory("stale")
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try TileStore(path: directory.path)
        try store.write((0..<5).map { syntheticTile($0, side: 8, parameters: 1) } + (0..<3).map { syntheticTile($0, side: 8, parameters: 2) })
        XCTAssertEqual(try store.statistics().perParameters, [1: 5, 2: 3])
        XCTAssertEqual(try store.removeStale(keeping: 2), 5)
        XCTAssertEqual(try store.statistics().records, 3)
    }

    func testReadOnlyAndMissingCachesAreClearErrors() throws {
        XCTAssertThrowsError(try TileStore(path: "/nonexistent/cache", readOnly: true)) { error in
            XCTAssertEqual((error as? CacheError)?.kind, .cannotOpen)
            XCTAssertTrue(String(describing: error).contains("/nonexistent/cache"))
        }
        let directory = try temporaryDirectory("readonly")
        defer {
            chmod(directory.path, 0o755)
            try? FileManager.default.removeItem(at: directory)
        }
        let store = try TileStore(path: directory.path)
        try store.write([syntheticTile(0, side: 8)])
        let reader = try TileStore(path: directory.path, readOnly: true)
        XCTAssertThrowsError(try reader.write([syntheticTile(1, side: 8)])) { error in
            XCTAssertEqual((error as? CacheError)?.kind, .readOnly)
        }
        XCTAssertEqual(try reader.statistics().records, 1)
        if getuid() != 0 {  // root ignores permission bits
            chmod(directory.path, 0o555)
            XCTAssertThrowsError(try TileStore(path: directory.path + "/sub"))
        }
    }
}

final class MergeTests: XCTestCase {
    func testShardsMergeIntoOneCacheWithoutDuplicates() throws {
        let root = try temporaryDirectory("merge")
        defer { try? FileManager.default.removeItem(at: root) }
        let shardA = try TileStore(path: root.appendingPathComponent("a").path)
        let shardB = try TileStore(path: root.appendingPathComponent("b").path)
        try shardA.write((0..<10).map { syntheticTile($0, side: 8) })
        try shardB.write((5..<15).map { syntheticTile($0, side: 8) })
        let target = try TileStore(path: root.appendingPathComponent("all").path)
        XCTAssertEqual(try target.merge(from: shardA).copied, 10)
        XCTAssertEqual(try target.merge(from: shardB).copied, 5)
        XCTAssertEqual(try target.statistics().records, 15)
        for i in 0..<15 { XCTAssertEqual(try target.read(syntheticTile(i, side: 8).key), syntheticTile(i, side: 8).tile) }
    }
}
