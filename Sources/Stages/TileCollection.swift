import Flow
import Foundation
import Slides
import Tiling

/// Tiles a training stage gathers from its stream before it trains (8-bit, so 10,000 tiles of
/// 64² take 120 MB). Tiles beyond `limit` are counted, never silently dropped.
final class TileCollection: @unchecked Sendable {
    let limit: Int
    private let lock = NSLock()
    private(set) var tiles: [Tile] = []
    private(set) var overLimit = 0

    init(limit: Int) { self.limit = limit }

    func add(_ tile: Tile, stage: String) throws {
        guard tile.image.width > 0, !tile.awaitingCache else {
            throw StageError("\(tile): the tile has no pixels (a cache stage must come before '\(stage)')")
        }
        lock.withLock {
            if tiles.count < limit { tiles.append(tile) } else { overLimit += 1 }
        }
    }

    var all: [Tile] { lock.withLock { tiles } }
}
