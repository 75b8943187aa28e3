import Flow
import Tiling

/// `cached_tiles`: the tiles of a warmed cache, as references.
enum CachedTilesKind: StageKind {
    static let name = "cached_tiles"
    static let doc = "Every tile of an existing cache (e.g. after `ssmamba cache warm`), without reading its pixels: the input of `pretrain` on a warmed cache. Records carry no labels, so fine-tuning reads a flow's `cache` step instead."
    static let parameters = [
        ParameterSpec("path", .path(mustExist: true), shapesPixels: false, "the cache folder"),
        ParameterSpec("parameters", .text, optional: true, "only records of this parameter fingerprint (hexadecimal, as `ssmamba cache stats` lists them)"),
    ]

    struct Parameters: Decodable {
        var path: String
        var parameters: String?
    }

    static func make(_ p: Parameters, _ step: StepAssembly) throws -> Built<Never, Tile> {
        .source(try Sources.cachedTiles(p.path, parameters: p.parameters))
    }
}
