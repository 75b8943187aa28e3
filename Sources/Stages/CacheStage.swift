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
                throw StageError("\(input): announced as cached but absent from \(presence.store.path) (was the cache changed during the run?)")
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

/// `export`: tiles as PNG (or JPEG) files plus tiles.csv.
final class ExportStage: Stage, @unchecked Sendable {
    typealias Output = Never
    let folder: URL
    /// JPEG quality, or nil for PNG.
    let jpegQuality: Int?
    private let lock = NSLock()
    private var rows: [String] = []

    init(folder: URL, jpegQuality: Int? = nil) throws {
        self.folder = folder
        self.jpegQuality = jpegQuality
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    func process(_ tile: Tile, _ context: StageContext<Never>) throws {
        guard tile.image.width > 0 else {
            throw StageError("\(tile): no pixels to export (a `cached_tiles` source reads none); export from a flow's `cache` step")
        }
        let stem = ((tile.source as NSString).lastPathComponent as NSString).deletingPathExtension
        let name = String(format: "%@_c%04d_r%04d_%gmpp.%@", stem, tile.column, tile.row, tile.requestedMicronsPerPixel, jpegQuality == nil ? "png" : "jpg")
        // A write that fails (full disk, folder gone read-only) would fail every later tile too.
        do {
            if let jpegQuality { try JPEGWriter.write(tile.image, to: folder.appendingPathComponent(name), quality: jpegQuality) } else {
                try PNGWriter.write(tile.image, to: folder.appendingPathComponent(name))
            }
        } catch { throw RunCannotContinue(error) }
        let row = TileTable.line(TileTable.Row(tile, size: tile.image.width, slideMicronsPerPixel: tile.grid?.micronsPerPixel, file: name))
        lock.withLock { rows.append(row) }
        context.count("export.tiles")
    }

    func finish(_ context: StageContext<Never>) throws {
        let body = lock.withLock { rows.sorted().joined() }
        try Data((TileTable.header() + body).utf8).write(to: folder.appendingPathComponent("tiles.csv"), options: .atomic)
    }
}
