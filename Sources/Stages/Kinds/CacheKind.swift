import Flow
import Tiling

/// `cache`: the LMDB tile cache.
enum CacheKind: StageKind {
    static let name = "cache"
    static let doc = "The LMDB tile cache: a tile already cached (same source file and same parameters of every stage before) is read instead of computed; a new one is written. Counts `cache.hits`, `cache.misses`."
    static let parameters = [
        ParameterSpec("path", .path(mustExist: false), default: "cache/tiles", shapesPixels: false, "cache folder (an LMDB environment)"),
        ParameterSpec("batch", .integer(1...4096), default: "64", "tiles per write transaction"),
        ParameterSpec("compression", .choice(["zstd", "none"]), default: "zstd", "record payload compression"),
    ]

    struct Parameters: Decodable {
        var path: String
        var batch: Int
        var compression: String
    }

    static func make(_ p: Parameters, _ step: StepAssembly) throws -> Built<Tile, Tile> {
        // Pixels of cached tiles are read for readers that use them; training stages stream their own.
        let readsPixels = step.readers.contains { reader in StageKinds.named(reader.kind.name)?.streamsFromCache != true }
        return .stage(CacheStage(presence: try step.cachePresence(of: step.step), batchSize: p.batch, readsPixels: readsPixels))
    }
}
