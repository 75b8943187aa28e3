import Flow
import Tiling
import SSMamba
import Tensors

/// `pretrain`: MAMIM pretraining streamed from the tile cache.
enum PretrainKind: StageKind {
    static let name = "pretrain"
    static let doc = "MAMIM pretraining (masked image modelling), streamed from the tile cache: each epoch a seeded permutation of every cached tile of its input, read and augmented by `readers` threads ahead of the optimizer; writes `<run>/<name>/checkpoint` and reconstruction pictures (masked input, reconstruction, original)."
    static let parameters = [
        ParameterSpec("model", ModelParameter.type(ModelParameter.pretrainableNames), default: "ssmamba_micro", "model configuration by name (`ssmamba model list`; plain layouts: MAMIM for the hierarchical R1 is not built), or `{name: …, dim: …, directions: […], …}` with fields set (drop-path is 0 in pretraining unless `drop_path` is set); tiles must have its input size (`ssmamba model info`)"),
        ParameterSpec("steps", .integer(1...10_000_000), default: "300", "optimizer steps"),
        ParameterSpec("batch", .integer(1...4096), default: "32", "images per step"),
        ParameterSpec("lr", .number(1e-7...1), default: "1e-3", "peak learning rate (AdamW, β₂ 0.95, cosine with warm-up)"),
        ParameterSpec("warmup", .number(0...1), default: "0.1", "fraction of steps of linear warm-up"),
        ParameterSpec("weight_decay", .number(0...1), default: "0.05", "decoupled weight decay (not on biases, norms, A_log, D)"),
        ParameterSpec("mask_ratio", .number(0.05...0.95), default: "0.75", "fraction of patches hidden per image and step"),
        ParameterSpec("masking", .choice(MaskedPretrainingSettings.Masking.allCases.map(\.rawValue)), default: "mae",
                      "mae: the encoder sees the visible patches only (cheap; its local operators see sparse neighbours); simmim: the encoder sees every cell, hidden patches replaced by a learned mask token, so it computes on the neighbourhoods of fine-tuning (about 1/(1 − mask_ratio) times the encoder's work)"),
        ParameterSpec("decoder_dim", .integer(8...1024), default: "128", "decoder width"),
        ParameterSpec("decoder_depth", .integer(1...12), default: "2", "decoder attention blocks"),
        ParameterSpec("decoder_heads", .integer(1...16), default: "4", "decoder attention heads"),
        ParameterSpec("decoder_mlp_ratio", .integer(0...16), optional: true, "MLP width of the decoder blocks as a multiple of decoder_dim (default: the encoder's `mlp_ratio`)"),
        ParameterSpec("crop_scale_min", .number(0.05...1), default: "0.2", "smallest area fraction of the random resized crop (1: no crop)"),
        ParameterSpec("flips", .flag, default: "true", "one of the eight flips and 90° rotations per image"),
        ParameterSpec("brightness", .number(0...0.5), default: "0", "brightness jitter (± fraction)"),
        ParameterSpec("contrast", .number(0...0.5), default: "0", "contrast jitter (± fraction, around the tile's mean grey)"),
        ParameterSpec("saturation", .number(0...0.5), default: "0", "saturation jitter (± fraction)"),
        ParameterSpec("reconstructions", .integer(0...256), default: "4", "reconstruction pictures to save"),
        TrainingPrecision.parameter,
        DataParallel.replicasParameter,
        ParameterSpec("readers", .integer(1...64), default: "2", "threads reading, decoding and augmenting batches from the cache ahead of the optimizer"),
        ParameterSpec("checkpoint_every", .integer(1...10_000_000), default: "100", "steps between resumable checkpoints (`<run>/<name>/last`; also at the end and when the run is stopped)"),
    ]
    static var readsOnly: [any StageKind.Type]? { [CacheKind.self, CachedTilesKind.self] }
    static let streamsFromCache = true

    struct Parameters: Decodable, AugmentationParameters {
        var model: ModelChoice
        var steps: Int
        var batch: Int
        var lr: Double
        var warmup: Double
        var weightDecay: Double
        var maskRatio: Double
        var masking: MaskedPretrainingSettings.Masking
        var decoderDim: Int
        var decoderDepth: Int
        var decoderHeads: Int
        var decoderMlpRatio: Int?
        var cropScaleMin: Double
        var flips: Bool
        var brightness: Double
        var contrast: Double
        var saturation: Double
        var reconstructions: Int
        var precision: GEMMPrecision
        var replicas: Int?
        var readers: Int
        var checkpointEvery: Int
    }

    static func make(_ p: Parameters, _ step: StepAssembly) throws -> Built<Tile, Never> {
        .stage(try PretrainStage(p, step), oneWorker: true)
    }
}
