import Flow
import Tiling

/// `evaluate_slides`: heatmaps and slide scores from a fine-tuned classifier.
enum EvaluateSlidesKind: StageKind {
    static let name = "evaluate_slides"
    static let doc = "Evaluation of slides with a fine-tuned classifier on the flow's own slide tiles (tissue → tiles → stain → cache: the preprocessing training saw), streamed from the cache slide by slide once the classifier exists: per-tile probabilities (CSV, and GeoJSON detections in level-0 pixels that QuPath imports), every class's probability map as a float32 OME-TIFF pyramid lying over the slide at its physical size (`<slide>.probabilities.ome.tif`; with overlapping tiles, a `stride` on the tiles step, each pixel averages the tiles over it), one class's map in colour as a pyramidal TIFF OpenSlide reads (`<slide>.heatmap.tif`), the slide's thumbnail with that map blended in and a legend (`<slide>.overlay.png`, linked from the report) and slide scores (`slide_scores.csv`), in `<run>/<name>/`. With `workers: N`, N slides are evaluated at once on one shared model; `<name>.images_per_second` is reported."
    static let parameters = [
        ParameterSpec("checkpoint", .text, "a `finetune` step of this flow, or a checkpoint folder"),
        ParameterSpec("mpp", .number(0.05...64), optional: true, "the crops to classify, by µm/px (default: each grid position's first scale)"),
        ParameterSpec("min_tissue", .number(0...1), default: "0", "least tissue fraction of a classified tile (the tiles stage's `min_tissue` has already filtered)"),
        ParameterSpec("batch", .integer(1...4096), default: "64", "tiles per forward pass"),
        ParameterSpec("heatmap_class", .text, optional: true, "the class whose probability the heatmap and overlay show (default: the first)"),
        ParameterSpec("readers", .integer(1...64), default: "2", "threads reading and decoding batches from the cache ahead of the model"),
    ]
    static var readsOnly: [any StageKind.Type]? { [CacheKind.self] }
    static let streamsFromCache = true

    struct Parameters: Decodable {
        var checkpoint: String
        var mpp: Double?
        var minTissue: Double
        var batch: Int
        var heatmapClass: String?
        var readers: Int
    }

    static func make(_ p: Parameters, _ step: StepAssembly) throws -> Built<Tile, Never> {
        let model = try step.checkpoint(p.checkpoint, from: [FinetuneKind.self])
        return .stage(try EvaluateSlidesStage(p, checkpoint: model, step))
    }
}
