import Flow
import TileCache
import Tiling

/// Which tiles of a cached slide grid the slide stages (`evaluate_slides`, `slide_mil`) take: one
/// crop per grid position (the one at `mpp`, or each position's first scale) with at least
/// `minimumTissue`, from a cache and from a `tiles` stage (errors say which is missing).
struct SlideTileSelection {
    let stage: String
    let micronsPerPixel: Double?
    let minimumTissue: Double

    /// The tile's cache entry and grid when it is taken; nil (counted) when filtered out.
    func select(_ tile: Tile, _ context: StageContext<Never>) throws -> (entry: CacheEntry, grid: GridFrame)? {
        let wanted = micronsPerPixel.map { abs(tile.requestedMicronsPerPixel - $0) <= 1e-9 * $0 } ?? (tile.scaleIndex == 0)
        guard wanted else { context.count("\(stage).tiles_of_other_scales"); return nil }
        guard let entry = tile.cacheEntry else {
            throw StageError(.invalidInput, "\(tile)", "not from a cache ('\(stage)' streams its tiles from the tile cache; put a `cache` stage before it)")
        }
        guard let grid = tile.grid else {
            throw StageError(.invalidInput, "\(tile)", "not a tile of a slide grid ('\(stage)' works on slides: read a cache fed by a `tiles` stage)")
        }
        guard tile.tissueFraction >= minimumTissue else { context.count("\(stage).tiles_below_min_tissue"); return nil }
        return (entry, grid)
    }
}
