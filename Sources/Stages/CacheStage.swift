import Flow
import Foundation
import Slides
import TileCache
import Tiling

/// `cache`: reads tiles already cached, writes new ones in batched transactions (flushed at the
/// end, also when the run stops). Every tile it emits carries its `cacheEntry`. Cached tiles are
/// read only when a reader needs their pixels: not for a warm-up (nothing after it) nor for
/// training stages, which stream pixels from the cache themselves.
final class CacheStage: Stage, @unchecked Sendable {
    let presence: CachePresence
    let batchSize: Int
    let readsPixels: Bool
    private let lock = NSLock()
    private var pending: [(key: TileKey, tile: CachedTile)] = []

    init(presence: CachePresence, batchSize: Int, readsPixels: Bool) {
        self.presence = presence
        self.batchSize = batchSize
        self.readsPixels = readsPixels
    }

    func process(_ input: Tile, _ context: StageContext<Tile>) throws {
        let key = presence.key(input)
        var tile = input
        tile.cacheEntry = CacheEntry(store: presence.store, key: key)
        if input.awaitingCache {
            context.count("cache.hits")
            guard readsPixels else { return try context.emit(tile) }
            guard let cached = try presence.store.read(key) else {
                throw StageError(.invalidInput, "\(input)", "announced as cached but absent from \(presence.store.path) (was the cache changed during the run?)")
            }
            tile.image = RGBImage(width: cached.width, height: cached.height, pixels: cached.pixels)
            tile.awaitingCache = false
            return try context.emit(tile)
        }
        context.count("cache.misses")
        let record = CachedTile(channels: 3, height: input.image.height, width: input.image.width, pixels: input.image.pixels,
                                level0Origin: (input.level0X, input.level0Y), requestedMicronsPerPixel: input.requestedMicronsPerPixel,
                                effectiveMicronsPerPixel: input.effectiveMicronsPerPixel, source: input.sourceIdentity,
                                parameters: presence.parameters)
        let full: [(key: TileKey, tile: CachedTile)]? = lock.withLock {
            pending.append((key, record))
            guard pending.count >= batchSize else { return nil }
            defer { pending.removeAll(keepingCapacity: true) }
            return pending
        }
        if let full { context.count("cache.written", try write(full)) }
        try context.emit(tile)
    }

    func finish(_ context: StageContext<Tile>) throws {
        let rest: [(key: TileKey, tile: CachedTile)] = lock.withLock { defer { pending.removeAll() }; return pending }
        if !rest.isEmpty { context.count("cache.written", try write(rest)) }
    }

    /// Writes a batch; a cache that cannot be written (full disk, read-only, LMDB failure) stops
    /// the run: every later batch would fail the same way.
    private func write(_ batch: [(key: TileKey, tile: CachedTile)]) throws -> Int {
        do { return try presence.store.write(batch) } catch { throw RunCannotContinue(error) }
    }
}
