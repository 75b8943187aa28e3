import Foundation
import Randomness
import Tensors
import TileCache
import XCTest

/// Damaged `data.mdb` files: liblmdb trusts its file and faults on a truncated one or wanders off a
/// damaged page, so every open checks the file's structure first (`LMDBFileCheck`).
final class DamagedCacheTests: XCTestCase {
    /// A cache whose tree has branch pages, values both inside leaf pages (4-px tiles) and on
    /// overflow pages (64-px tiles), and a free list (the last transaction deleted records).
    /// Returns its data.mdb and what it holds before and after that last transaction.
    static func makeCache(in directory: URL) throws -> (file: [UInt8], before: [TileKey: CachedTile], after: [TileKey: CachedTile]) {
        let store = try TileStore(path: directory.path)
        let tiles = (0..<150).map { syntheticTile($0, side: $0 % 5 == 0 ? 64 : 4) }
        for start in stride(from: 0, to: tiles.count, by: 25) { try store.write(Array(tiles[start..<(start + 25)])) }
        let before = Dictionary(uniqueKeysWithValues: tiles.map { ($0.key, $0.tile) })
        let removed = tiles.enumerated().filter { $0.offset % 7 == 3 }.map(\.element.key)
        try store.environment.delete(removed.map(\.bytes))
        var after = before
        for key in removed { after[key] = nil }
        let file = [UInt8](try Data(contentsOf: directory.appendingPathComponent("data.mdb")))
        return (file, before, after)
    }

    /// What a damaged copy let a reader see: refused at open, or records verified and read.
    enum Outcome: Equatable {
        case refused
        /// The cache opened; `reported` is whether verify (or a read) reported damage, `contents`
        /// what reads by key returned, `enumerated` the keys a scan listed.
        case opened(reported: Bool, contents: [TileKey: CachedTile], enumerated: Set<TileKey>)
    }

    /// Opens `directory` read-only (or writable, as `cache verify --repair` does), verifies it and
    /// reads it as a training stream would: every key enumerated, then batches by key.
    static func readBack(_ directory: URL, readOnly: Bool, keys: [TileKey]) throws -> Outcome {
        let store: TileStore
        do { store = try TileStore(path: directory.path, readOnly: readOnly) } catch let error as CacheError {
            XCTAssertTrue([.damaged, .cannotOpen].contains(error.kind), "\(error)")
            XCTAssertTrue(error.description.contains(directory.path), "\(error)")
            return .refused
        }
        var reported: Bool
        do { reported = try !store.verify().isEmpty } catch is CacheError { reported = true }
        _ = try? store.statistics()
        var enumerated: [TileKey] = []
        try? store.environment.read(releasingPages: true) { txn in
            try txn.forEach { key, _ in if let k = TileKey(bytes: key) { enumerated.append(k) } }
        }
        var contents: [TileKey: CachedTile] = [:]
        for start in stride(from: 0, to: keys.count, by: 16) {
            let batch = Array(keys[start..<min(start + 16, keys.count)])
            guard let found = try? store.read(batch) else { reported = true; continue }
            for (key, lookup) in zip(batch, found) {
                if case .found(let tile) = lookup { contents[key] = tile }
            }
            _ = try? store.batch(batch.filter { $0.x % 320 == 0 }, mean: [0, 0, 0], std: [1, 1, 1])
        }
        return .opened(reported: reported, contents: contents, enumerated: Set(enumerated))
    }

    /// ≥ 2,000 mutated copies (bytes set anywhere, bits flipped in page headers and the meta pages,
    /// truncations): no crash; a copy that opens and verifies clean reads back exactly what the
    /// cache held after its last transaction, or before it (a damaged newer meta page leaves
    /// liblmdb the older snapshot, as after a crash); anything else was reported.
    func testMutatedCacheFilesNeverCrashAndDamageIsReported() throws {
        let directory = try temporaryDirectory("mutated-cache")
        defer { try? FileManager.default.removeItem(at: directory) }
        let original = try Self.makeCache(in: directory.appendingPathComponent("original"))
        let keys = original.before.keys.sorted()
        let pageSize = 4096
        var rng = RandomGenerator(seed: 2026)
        var refused = 0, reported = 0, intact = 0
        let iterations = 2_100
        let copy = directory.appendingPathComponent("copy")
        for iteration in 0..<iterations {
            var bytes = original.file
            switch iteration % 5 {
            case 0:
                for _ in 0..<(1 + rng.integer(below: 4)) { bytes[rng.integer(below: bytes.count)] = UInt8(rng.integer(below: 256)) }
            case 1:
                // Page headers and slot arrays: where the structure lives.
                let page = rng.integer(below: bytes.count / pageSize)
                for _ in 0..<(1 + rng.integer(below: 3)) { bytes[page * pageSize + rng.integer(below: 64)] ^= UInt8(1 << rng.integer(below: 8)) }
            case 2:
                let meta = rng.integer(below: 2)
                bytes[meta * pageSize + rng.integer(below: 160)] ^= UInt8(1 << rng.integer(below: 8))
            case 3:
                bytes = Array(bytes.prefix(rng.integer(below: bytes.count)))
            default:
                // A node's bytes inside a leaf or branch page: keys, sizes, child and overflow page numbers.
                let page = rng.integer(below: bytes.count / pageSize)
                let offset = page * pageSize + pageSize - 1 - rng.integer(below: 2_048)
                bytes[offset] ^= UInt8(1 << rng.integer(below: 8))
            }
            try? FileManager.default.removeItem(at: copy)
            try FileManager.default.createDirectory(at: copy, withIntermediateDirectories: true)
            try Data(bytes).write(to: copy.appendingPathComponent("data.mdb"))
            let outcome = try Self.readBack(copy, readOnly: iteration % 3 != 0, keys: keys)
            switch outcome {
            case .refused:
                refused += 1
            case .opened(reported: true, _, _):
                reported += 1
            case .opened(reported: false, let contents, let enumerated):
                XCTAssertTrue(contents == original.after || contents == original.before,
                              "mutation \(iteration): the cache opened and verified clean but read back \(contents.count) of \(original.after.count) records, not as written")
                XCTAssertEqual(enumerated, Set(contents.keys), "mutation \(iteration): a scan lists other keys than reads find")
                intact += 1
            }
        }
        print("mutated caches: \(iterations) files, \(refused) refused as damaged, \(reported) opened with damage reported, \(intact) read back intact; no crash")
        XCTAssertGreaterThan(refused, iterations / 10)
        XCTAssertGreaterThan(reported, 20)
    }

    /// A truncated file faulted (SIGBUS) inside liblmdb; now it is a typed error naming the file
    /// and what to do, read-only and writable.
    func testATruncatedCacheIsRefusedWithAClearError() throws {
        let directory = try temporaryDirectory("truncated")
        defer { try? FileManager.default.removeItem(at: directory) }
        let original = try Self.makeCache(in: directory)
        try Data(original.file.prefix(original.file.count - 4096)).write(to: directory.appendingPathComponent("data.mdb"))
        for readOnly in [true, false] {
            XCTAssertThrowsError(try TileStore(path: directory.path, readOnly: readOnly)) { error in
                let error = error as? CacheError
                XCTAssertEqual(error?.kind, .damaged)
                XCTAssertTrue(error?.message.contains("truncated") ?? false, "\(String(describing: error))")
                XCTAssertTrue(error?.message.contains("rebuild") ?? false, "\(String(describing: error))")
            }
        }
    }

    /// A flipped page type in the records' tree: refused at open, naming the page.
    func testADamagedTreePageIsRefusedNamingThePage() throws {
        let directory = try temporaryDirectory("damaged-page")
        defer { try? FileManager.default.removeItem(at: directory) }
        var file = try Self.makeCache(in: directory).file
        // The records' root: meta page 0 or 1 (the newer) holds its number at byte 16 + 112.
        func u64(_ offset: Int) -> Int { file.withUnsafeBytes { Int($0.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) } }
        let newer = u64(16 + 128) > u64(4096 + 16 + 128) ? 0 : 4096
        let root = u64(newer + 16 + 112)
        file[root * 4096 + 10] ^= 0x03   // branch <-> leaf
        try Data(file).write(to: directory.appendingPathComponent("data.mdb"))
        XCTAssertThrowsError(try TileStore(path: directory.path, readOnly: true)) { error in
            XCTAssertEqual((error as? CacheError)?.kind, .damaged)
            XCTAssertTrue("\(error)".contains("records page \(root)"), "\(error)")
        }
    }

    /// A damaged overflow header (which liblmdb reads when it frees the record's pages) is reported
    /// by verify, and `--repair` removes that record without handing its pages out twice.
    func testADamagedOverflowHeaderIsReportedAndRepaired() throws {
        let directory = try temporaryDirectory("overflow-header")
        defer { try? FileManager.default.removeItem(at: directory) }
        let original = try Self.makeCache(in: directory)
        let key = try XCTUnwrap(original.after.keys.sorted().first { original.after[$0]!.width == 64 })
        var file = original.file
        var offset = 0
        do {
            let store = try TileStore(path: directory.path, readOnly: true)
            try store.environment.read { txn in
                let value = try XCTUnwrap(try txn.get(key.bytes))
                // Find the record's bytes in the file: its overflow header sits 16 bytes before them.
                let needle = Array(value.prefix(96))
                offset = try XCTUnwrap((0..<(file.count - 96)).first { file[$0] == needle[0] && Array(file[$0..<($0 + 96)]) == needle })
            }
        }
        XCTAssertEqual(offset % 4096, 16)
        file[offset - 16 + 12] ^= 0x40     // the page count
        try Data(file).write(to: directory.appendingPathComponent("data.mdb"))
        let store = try TileStore(path: directory.path)
        let damaged = try store.verify()
        XCTAssertEqual(damaged.count, 1)
        XCTAssertTrue(damaged.first?.reason.contains("overflow page") ?? false, "\(damaged)")
        XCTAssertEqual(try store.removeDamaged(), 1)
        try store.write([(key, original.after[key]!)])
        try store.write((150..<200).map { syntheticTile($0, side: 64) })  // take pages from the free list
        let reopened = try TileStore(path: directory.path)
        XCTAssertTrue(try reopened.verify().isEmpty)
        for (k, tile) in original.after { XCTAssertEqual(try reopened.read(k), tile) }
    }

    /// A key whose bytes were changed (still in order) would hand one tile's pixels out under
    /// another position: the record's header must name the same tile.
    func testARecordUnderAnotherKeyIsCorrupt() throws {
        let directory = try temporaryDirectory("moved-record")
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try TileStore(path: directory.path)
        let (key, tile) = syntheticTile(3, side: 8)
        try store.write([(key, tile)])
        let stored = try store.environment.read { Array(try XCTUnwrap(try $0.get(key.bytes))) }
        var moved = key
        moved.x += 1
        try store.environment.put([(key: moved.bytes, value: stored)])
        XCTAssertEqual(try store.read(key), tile)
        XCTAssertThrowsError(try store.read(moved)) { error in
            XCTAssertTrue("\(error)".contains("another tile"), "\(error)")
        }
        XCTAssertEqual(try store.verify().count, 1)
    }
}
