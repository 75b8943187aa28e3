import Flow
import Foundation
import TileCache
import Tiling

/// One tile a training stage trains on: where its pixels are cached, and what the data says of it.
public struct TrainingTile: Sendable, CustomStringConvertible {
    public let entry: CacheEntry
    public let label: String?
    /// train / validation / test, when the dataset assigns one.
    public let split: String?
    /// The slide or image file (source-level splits keep one file's tiles together).
    public let source: String

    public init(entry: CacheEntry, label: String? = nil, split: String? = nil, source: String) {
        self.entry = entry
        self.label = label
        self.split = split
        self.source = source
    }

    public var description: String { "\((source as NSString).lastPathComponent) record \(entry.key) in \(entry.store.path)" }
}

/// The tiles a training stage gathers from its stream before training: references into the cache,
/// not pixels (≈ 100 bytes a tile, whatever its size), so memory stays flat in the data set's
/// size and no tile is left out.
final class TrainingTiles: @unchecked Sendable {
    private let lock = NSLock()
    private var tiles: [TrainingTile] = []

    /// Takes `tile`'s cache reference; a tile that no cache stage has seen is an error.
    func add(_ tile: Tile, stage: String) throws {
        guard let entry = tile.cacheEntry else {
            throw StageError("\(tile): not from a cache ('\(stage)' streams its tiles from the tile cache; put a `cache` stage before it)")
        }
        let reference = TrainingTile(entry: entry, label: tile.label, split: tile.split, source: tile.source)
        lock.withLock { tiles.append(reference) }
    }

    /// Every tile, in a fixed order (by cache key) whatever order the stream delivered them in.
    var all: [TrainingTile] {
        lock.withLock { tiles }.sorted { a, b in
            a.entry.store.path != b.entry.store.path ? a.entry.store.path < b.entry.store.path
                : a.entry.key.bytes.lexicographicallyPrecedes(b.entry.key.bytes)
        }
    }
}
