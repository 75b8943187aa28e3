import Flow
import Tiling

/// `slide_mil`: slide-level classification or survival from tile embeddings.
enum SlideMILKind: StageKind {
    static let name = "slide_mil"
    static let doc = "Whole-slide tasks on the flow's own slide tiles (tissue → tiles → stain → cache): tile embeddings from a checkpoint's encoder (cached as safetensors), then an attention-MIL aggregator (ABMIL) for slide labels, or survival with the Cox loss; k-fold cross-validation over patients (`<run>/<name>/cross_validation.csv`, `abmil.safetensors`). Labels come from the slides source's labels CSV."
    static let parameters = [
        ParameterSpec("checkpoint", .text, "a `pretrain` or `finetune` step of this flow, or a checkpoint folder"),
        ParameterSpec("task", .choice(["classification", "survival"]), default: "classification", "slide labels (`label` column) or survival (`time`, `event` columns)"),
        ParameterSpec("mpp", .number(0.05...64), optional: true, "the crops to embed, by µm/px (default: each grid position's first scale)"),
        ParameterSpec("min_tissue", .number(0...1), default: "0", "least tissue fraction of an embedded tile (the tiles stage's `min_tissue` has already filtered)"),
        ParameterSpec("max_tiles", .integer(1...100_000), default: "2000", "tiles per slide at most (evenly spaced)"),
        ParameterSpec("epochs", .integer(1...100_000), default: "100", "full passes over the training slides"),
        ParameterSpec("hidden", .integer(4...1024), default: "64", "attention width"),
        ParameterSpec("lr", .number(1e-7...1), default: "1e-3", "learning rate (AdamW)"),
        ParameterSpec("folds", .integer(2...100), default: "5", "cross-validation folds (at most one per patient)"),
        ParameterSpec("cache", .path(mustExist: false), default: "cache/embeddings", "folder of cached tile embeddings"),
        ParameterSpec("readers", .integer(1...64), default: "2", "threads reading and decoding tiles from the cache ahead of the encoder"),
    ]
    static var readsOnly: [any StageKind.Type]? { [CacheKind.self] }
    static let streamsFromCache = true

    struct Parameters: Decodable {
        var checkpoint: String
        var task: String
        var mpp: Double?
        var minTissue: Double
        var maxTiles: Int
        var epochs: Int
        var hidden: Int
        var lr: Double
        var folds: Int
        var cache: String
        var readers: Int
    }

    static func make(_ p: Parameters, _ step: StepAssembly) throws -> Built<Tile, Never> {
        let encoder = try step.checkpoint(p.checkpoint, from: [PretrainKind.self, FinetuneKind.self])
        return .stage(try SlideMILStage(p, checkpoint: encoder, step))
    }
}
