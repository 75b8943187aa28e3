/// Where one tile's record lives: the cache and the record's key. Readers fetch the pixels when
/// they need them (`TileStore.read`), so a reference costs bytes, not a tile.
public struct CacheEntry: Sendable {
    public let store: TileStore
    public let key: TileKey

    public init(store: TileStore, key: TileKey) {
        self.store = store
        self.key = key
    }
}
