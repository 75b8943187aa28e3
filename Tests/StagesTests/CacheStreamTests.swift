import Foundation
import Slides
import Stages
import Tensors
import TileCache
import XCTest

/// Training batches streamed from a real LMDB cache: epochs, order, backpressure, damaged records.
final class CacheStreamTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("cache-stream-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    /// `count` 8×8 tiles whose every pixel spells the tile's index (red = i mod 256, green = i / 256),
    /// written to a real cache.
    func writeTiles(_ count: Int, side: Int = 8) throws -> (store: TileStore, tiles: TrainingSet) {
        let store = try TileStore(path: folder.appendingPathComponent("cache").path)
        var tiles: [TrainingTile] = [], records: [(key: TileKey, tile: CachedTile)] = []
        for i in 0..<count {
            let key = TileKey(source: 9, parameters: 1, x: i, y: 0, micronsPerPixel: 0.5)
            let image = RGBImage(width: side, height: side, filling: (UInt8(i % 256), UInt8(i / 256), 77))
            records.append((key, CachedTile(channels: 3, height: side, width: side, pixels: image.pixels, level0Origin: (i, 0),
                                            requestedMicronsPerPixel: 0.5, effectiveMicronsPerPixel: 0.5, source: 9, parameters: 1)))
            tiles.append(TrainingTile(entry: CacheEntry(store: store, key: key), label: "c\(i % 3)", source: "tile-\(i)"))
        }
        try store.write(records)
        return (store, try TrainingSet(tiles))
    }

    /// Which tile each image of a batch shows, read back from its pixels.
    func identities(_ batch: CacheBatch) -> [Int] {
        (0..<batch.members.count).map { b in
            let image = Augmentation.image(batch.images, index: b)
            return Int(image[x: 0, y: 0, channel: 0]) + 256 * Int(image[x: 0, y: 0, channel: 1])
        }
    }

    func testEveryTileOfEachEpochIsReadExactlyOnce() throws {
        let (_, tiles) = try writeTiles(103)
        let (batch, epochs) = (8, 3)
        let steps = (epochs * tiles.count + batch - 1) / batch
        let order = EpochOrder(count: tiles.count, seed: 5)
        func streamed(readers: Int) -> [CacheBatch] {
            let stream = CacheBatchStream(CacheBatchReader(tiles: tiles, augmentation: .evaluation, size: 8, seed: 1), count: steps,
                                          plan: order.batchPlan(size: batch), readers: readers, capacity: 3)
            defer { stream.stop() }
            var batches: [CacheBatch] = []
            while let next = stream.next() { batches.append(next) }
            return batches
        }
        let batches = streamed(readers: 2)
        XCTAssertEqual(batches.map(\.index), Array(0..<steps), "in order")
        // The pixels read are the records the plan named.
        let seen = batches.flatMap(identities)
        XCTAssertEqual(seen, batches.flatMap(\.members))
        XCTAssertTrue(batches.allSatisfy { $0.failures.isEmpty })
        for epoch in 0..<epochs {
            let visits = Dictionary(grouping: seen[(epoch * tiles.count)..<((epoch + 1) * tiles.count)], by: { $0 }).mapValues(\.count)
            XCTAssertEqual(visits.count, tiles.count, "epoch \(epoch) visits every tile")
            XCTAssertTrue(visits.values.allSatisfy { $0 == 1 }, "epoch \(epoch) visits each tile once")
        }
        XCTAssertNotEqual(Array(seen[0..<tiles.count]), Array(seen[tiles.count..<(2 * tiles.count)]), "each epoch is shuffled anew")
        // Readers make the same batches whatever their number.
        let single = streamed(readers: 1)
        XCTAssertEqual(single.map(\.members), batches.map(\.members))
        XCTAssertEqual(single.map { $0.images.scalars }, batches.map { $0.images.scalars })
    }

    func testAugmentedBatchesDoNotDependOnTheReaderCount() throws {
        let (_, tiles) = try writeTiles(40, side: 16)
        var augmentation = Augmentation()
        augmentation.brightness = 0.8...1.2
        let plan = EpochOrder(count: tiles.count, seed: 2).batchPlan(size: 6)
        func images(readers: Int) -> [[Float]] {
            let stream = CacheBatchStream(CacheBatchReader(tiles: tiles, augmentation: augmentation, size: 12, seed: 3), count: 9,
                                          plan: plan, readers: readers)
            defer { stream.stop() }
            var out: [[Float]] = []
            while let next = stream.next() { out.append(next.images.scalars) }
            return out
        }
        let two = images(readers: 2)
        XCTAssertEqual(two.count, 9)
        XCTAssertEqual(images(readers: 1), two)
        XCTAssertEqual(images(readers: 3), two)
    }

    func testReadersWaitForTheConsumer() throws {
        let (_, tiles) = try writeTiles(64)
        let stream = CacheBatchStream(CacheBatchReader(tiles: tiles, augmentation: .evaluation, size: 8, seed: 1), count: 50,
                                      plan: EpochOrder(count: tiles.count, seed: 1).batchPlan(size: 4), readers: 2, capacity: 3)
        defer { stream.stop() }
        // Nothing is taken: the readers make `capacity` batches, then wait.
        let deadline = Date().addingTimeInterval(20)
        while stream.progress.started < 3 && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        XCTAssertEqual(stream.progress.started, 3)
        Thread.sleep(forTimeInterval: 0.2)
        XCTAssertEqual(stream.progress.started, 3, "readers ran ahead of a consumer that took nothing")
        for _ in 0..<5 { XCTAssertNotNil(stream.next()) }
        while stream.progress.started < 8 && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        Thread.sleep(forTimeInterval: 0.1)
        XCTAssertEqual(stream.progress.started, 8, "five taken, three ahead")
    }

    func testDamagedAndMissingRecordsAreListedNotHidden() throws {
        let (store, tiles) = try writeTiles(10)
        var record = try store.environment.read { Array(try XCTUnwrap(try $0.get(tiles[3].entry.key.bytes))) }
        record[record.count - 2] ^= 0x41
        try store.environment.put([(key: tiles[3].entry.key.bytes, value: record)], overwrite: true)
        try store.environment.delete([tiles[6].entry.key.bytes])
        let batch = CacheBatchReader(tiles: tiles, augmentation: .evaluation, size: 8, seed: 0).batch(0, of: Array(0..<10))
        XCTAssertEqual(batch.members, [0, 1, 2, 4, 5, 7, 8, 9])
        XCTAssertEqual(identities(batch), [0, 1, 2, 4, 5, 7, 8, 9])
        XCTAssertEqual(batch.images.shape, [8, 3, 8, 8])
        XCTAssertEqual(batch.failures.count, 2)
        let reasons = Dictionary(uniqueKeysWithValues: batch.failures.map { ($0.tile.source, $0.reason) })
        XCTAssertTrue(reasons["tile-3"]?.contains("corrupt") ?? false, "\(reasons)")
        XCTAssertTrue(reasons["tile-3"]?.contains("cache verify") ?? false, "says what to do: \(reasons)")
        XCTAssertTrue(reasons["tile-6"]?.contains("absent") ?? false, "\(reasons)")
        XCTAssertTrue(batch.failures[0].tile.description.contains(store.path), "names the cache")
    }
}

/// A data set of 100,000 tiles: one epoch streamed from the cache reads each exactly once.
final class LargeEpochTests: XCTestCase {
    func testAHundredThousandTileEpochReadsEachTileOnce() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("large-epoch-\(UUID())")
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try TileStore(path: folder.path)
        let count = 100_000, side = 4
        var tiles = TrainingSet()
        for chunk in stride(from: 0, to: count, by: 5_000) {
            let records = (chunk..<min(count, chunk + 5_000)).map { i -> (key: TileKey, tile: CachedTile) in
                let key = TileKey(source: 3, parameters: 1, x: i, y: 0, micronsPerPixel: 0.5)
                let colour = (UInt8(i & 0xFF), UInt8((i >> 8) & 0xFF), UInt8(i >> 16))
                return (key, CachedTile(channels: 3, height: side, width: side, pixels: RGBImage(width: side, height: side, filling: colour).pixels,
                                        level0Origin: (i, 0), requestedMicronsPerPixel: 0.5, effectiveMicronsPerPixel: 0.5, source: 3, parameters: 1))
            }
            try store.write(records)
            for record in records { try tiles.append(TrainingTile(entry: CacheEntry(store: store, key: record.key), source: "s")) }
        }
        let batch = 256
        let stream = CacheBatchStream(CacheBatchReader(tiles: tiles, augmentation: .evaluation, size: side, seed: 0),
                                      count: (count + batch - 1) / batch, plan: EpochOrder(count: count, seed: 8).batchPlan(size: batch), readers: 2)
        defer { stream.stop() }
        var visits = [UInt8](repeating: 0, count: count)
        var positions = 0
        while let next = stream.next() {
            XCTAssertTrue(next.failures.isEmpty)
            for b in 0..<next.members.count where positions < count {
                let image = Augmentation.image(next.images, index: b)
                let (r, g, bl) = (Int(image[x: 0, y: 0, channel: 0]), Int(image[x: 0, y: 0, channel: 1]), Int(image[x: 0, y: 0, channel: 2]))
                let i = r | g << 8 | bl << 16
                XCTAssertEqual(i, next.members[b])
                visits[i] &+= 1
                positions += 1
            }
        }
        XCTAssertEqual(positions, count)
        XCTAssertTrue(visits.allSatisfy { $0 == 1 }, "\(visits.filter { $0 != 1 }.count) tiles not read exactly once")
    }
}
