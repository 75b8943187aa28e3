import Flow
import Tiling
import SSMamba
import Tensors

/// `finetune`: supervised fine-tuning of the classifier streamed from the tile cache.
enum FinetuneKind: StageKind {
    static let name = "finetune"
    static let doc = "Supervised fine-tuning of the classifier on labelled tiles streamed from the tile cache, from scratch or from a `pretrain` step's encoder; keeps the best epoch on validation (balanced accuracy) and reports test accuracy, balanced accuracy, macro-F1 and AUC with bootstrap 95 % intervals (`<run>/<name>/metrics.json`)."
    static let parameters = [
        ParameterSpec("model", ModelParameter.type(ModelParameter.names), default: "ssmamba_micro", "model configuration by name (`ssmamba model list`), or `{name: …, dim: …, directions: […], …}` with fields set; with `init`, it must build the pretrained network"),
        ParameterSpec("init", .text, optional: true, "a `pretrain` step of this flow, or a checkpoint folder; absent or `scratch`: from scratch"),
        ParameterSpec("epochs", .integer(1...10_000), default: "10", "passes over the training tiles"),
        ParameterSpec("batch", .integer(1...4096), default: "32", "images per step"),
        ParameterSpec("lr", .number(1e-7...1), default: "1e-3", "peak learning rate (AdamW, cosine with warm-up)"),
        ParameterSpec("weight_decay", .number(0...1), default: "0.01", "decoupled weight decay"),
        ParameterSpec("label_smoothing", .number(0...0.5), default: "0.1", "cross-entropy label smoothing"),
        ParameterSpec("balanced", .flag, default: "true", "class-balanced sampling (imbalanced data); false: each epoch a seeded permutation of the training tiles"),
        ParameterSpec("warmup", .number(0...1), optional: true, "fraction of all steps of linear warm-up (default: half an epoch)"),
        ParameterSpec("layer_decay", .number(0.05...1), default: "1", "layer-wise learning-rate decay: block i of L learns at decay^(L − i) of the rate, the head at the full rate (1: off)"),
        ParameterSpec("freeze_encoder", .flag, default: "false", "train the head only, on the encoder's features without drop-path (the linear probe of a pretrained encoder)"),
        ParameterSpec("crop_scale_min", .number(0.05...1), default: "0.6", "smallest area fraction of the random resized crop (1: no crop)"),
        ParameterSpec("flips", .flag, default: "true", "one of the eight flips and 90° rotations per image"),
        ParameterSpec("brightness", .number(0...0.5), default: "0.1", "brightness jitter (± fraction)"),
        ParameterSpec("contrast", .number(0...0.5), default: "0", "contrast jitter (± fraction, around the tile's mean grey)"),
        ParameterSpec("saturation", .number(0...0.5), default: "0", "saturation jitter (± fraction)"),
        ParameterSpec("validation_fraction", .number(0...0.9), default: "0.15", "sources for validation when the data has no split"),
        ParameterSpec("test_fraction", .number(0...0.9), default: "0.15", "sources for test when the data has no split"),
        TrainingPrecision.parameter,
        DataParallel.replicasParameter,
        ParameterSpec("readers", .integer(1...64), default: "2", "threads reading, decoding and augmenting batches from the cache ahead of the optimizer"),
        ParameterSpec("checkpoint_every", .integer(1...10_000_000), default: "100", "steps between resumable checkpoints (`<run>/<name>/last`; also at every epoch's end and when the run is stopped)"),
    ]
    static var readsOnly: [any StageKind.Type]? { [CacheKind.self, CachedTilesKind.self] }
    static let streamsFromCache = true

    struct Parameters: Decodable, AugmentationParameters {
        var model: ModelChoice
        /// `init` in the flow file: a `pretrain` step, a checkpoint folder, or `scratch`.
        var initialization: String?
        var epochs: Int
        var batch: Int
        var lr: Double
        var weightDecay: Double
        var labelSmoothing: Double
        var balanced: Bool
        var warmup: Double?
        var layerDecay: Double
        var freezeEncoder: Bool
        var cropScaleMin: Double
        var flips: Bool
        var brightness: Double
        var contrast: Double
        var saturation: Double
        var validationFraction: Double
        var testFraction: Double
        var precision: GEMMPrecision
        var replicas: Int?
        var readers: Int
        var checkpointEvery: Int

        enum CodingKeys: String, CodingKey {
            case model, initialization = "init", epochs, batch, lr, weightDecay, labelSmoothing, balanced, warmup, layerDecay, freezeEncoder
            case cropScaleMin, flips, brightness, contrast, saturation, validationFraction, testFraction, precision, replicas, readers, checkpointEvery
        }
    }

    static func make(_ p: Parameters, _ step: StepAssembly) throws -> Built<Tile, Never> {
        let start = try p.initialization.flatMap { $0 == "scratch" ? nil : try step.checkpoint($0, from: [PretrainKind.self]) }
        return .stage(try FinetuneStage(p, initFrom: start, step), oneWorker: true)
    }
}
