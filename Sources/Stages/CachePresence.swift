import Flow
import TileCache
import Tiling

/// Says whether a tile is already in a flow's cache, so the tiles stage need not read it.
final class CachePresence: @unchecked Sendable {
    let store: TileStore
    let parameters: UInt64
    init(store: TileStore, parameters: UInt64) {
        self.store = store
        self.parameters = parameters
    }
    func key(_ tile: Tile) -> TileKey {
        TileKey(source: tile.sourceIdentity, parameters: parameters, x: tile.level0X, y: tile.level0Y, micronsPerPixel: tile.requestedMicronsPerPixel)
    }
}
