import Flow
import Tiling

/// `tiles`: the tissue grid of each slide and its multi-magnification crops.
enum TilesKind: StageKind {
    static let name = "tiles"
    static let doc = "A tissue tile grid at `mpp`, and at each position crops of `size` px centred on it at every µm/px of `scales`."
    static let parameters = [
        ParameterSpec("mpp", .number(0.05...64), default: "0.5", "grid µm/px"),
        ParameterSpec("size", .integer(16...4096), default: "224", "tile size in pixels"),
        ParameterSpec("stride", .integer(1...4096), optional: true, "pixels between tiles at `mpp` (default: `size`, no overlap)"),
        ParameterSpec("scales", .numbers(0.05...64), optional: true, "µm/px of the crops at each position (default: [mpp])"),
        ParameterSpec("min_tissue", .number(0...1), default: "0.5", "least tissue fraction of a kept position (from the tissue stage before; without one every position counts as tissue)"),
        ParameterSpec("allow_upsampling", .flag, default: "false", "allow scales finer than the slide's level 0"),
        ParameterSpec("max_per_slide", .integer(1...100_000_000), optional: true, shapesPixels: false, "keep at most this many positions per slide (evenly spaced)"),
    ]

    struct Parameters: Decodable {
        var mpp: Double
        var size: Int
        var stride: Int?
        var scales: [Double]?
        var minTissue: Double
        var allowUpsampling: Bool
        var maxPerSlide: Int?
    }

    static func make(_ p: Parameters, _ step: StepAssembly) throws -> Built<SlideItem, Tile> {
        .stage(TilesStage(p, presence: try cacheAhead(step)))
    }

    /// The cache a tiles step feeds through deterministic steps only (stain), if any: positions
    /// whose tiles it already holds are announced without reading the slide.
    static func cacheAhead(_ step: StepAssembly) throws -> CachePresence? {
        let caches = step.steps.filter { $0.kind.name == CacheKind.name }.filter { cache in
            let chain = step.upstream(of: cache)
            guard let index = chain.firstIndex(where: { $0.kind.name == name }), chain[index].name == step.name else { return false }
            return chain[..<index].allSatisfy { $0.kind.name == StainKind.name }
        }
        return try caches.last.map { try step.cachePresence(of: $0) }
    }
}
