import Flow
import SSMamba
import Tiling

/// Every source and stage a flow file can name, with its parameters and defaults: the one place
/// they are documented (`ssmamba flow docs` prints it as Markdown; docs/FLOWS.md is that output).
public enum Catalog {
    public static let slides = StepKind(
        name: "slides", input: nil, output: "slide",
        doc: "Whole-slide images (TIFF/SVS) from a file, a folder or a glob, with optional labels.",
        parameters: [
            ParameterSpec("path", .path(mustExist: true), "a slide, a folder of slides, or a glob such as data/*.svs"),
            ParameterSpec("pattern", .text, default: "\"\(PathPattern.slideFiles)\"", "file name pattern when `path` is a folder (braces list alternatives)"),
            ParameterSpec("labels", .path(mustExist: true), optional: true,
                          "CSV with a `slide` column (file name or path) and optional patient, label, time, event columns"),
            ParameterSpec("mpp_override", .number(0.01...100), optional: true, "level-0 µm/px for slides that do not record it (slides that record one keep theirs)"),
            ParameterSpec("shard", .text, optional: true, "i/n: only every n-th slide from the i-th (0-based); `ssmamba cache warm --shard` sets it"),
        ])

    public static let roiFolder = StepKind(
        name: "roi_folder", input: nil, output: "image",
        doc: "Region-of-interest images in one sub-folder per class (NCT-CRC-HE style); the folder name is the label.",
        parameters: [
            ParameterSpec("path", .path(mustExist: true), "the folder holding one sub-folder per class"),
            ParameterSpec("extensions", .text, default: "\"png,jpg,jpeg,tif,tiff\"", "file extensions to take, comma separated"),
        ])

    public static let imageCSV = StepKind(
        name: "image_csv", input: nil, output: "image",
        doc: "A CSV of image paths (column `path`, relative to the CSV's folder) with `label` and an optional `split` column.",
        parameters: [
            ParameterSpec("path", .path(mustExist: true), "the CSV file"),
        ])

    public static let nuclei = StepKind(
        name: "nuclei", input: nil, output: "tile",
        doc: "One patch per nucleus from an H&E image with instance and type masks (.npy/.npz, PanNuke/CoNSeP/Lizard style), labelled by type; split train/validation/test by whole image regions, so overlapping patches never cross splits.",
        parameters: [
            ParameterSpec("image", .path(mustExist: true), "the H&E image"),
            ParameterSpec("instances", .path(mustExist: true), "instance mask (.npy or .npz; 0 = background, one id per nucleus)"),
            ParameterSpec("types", .path(mustExist: true), "type mask (.npy or .npz; 0 = background, 1…K = nucleus classes)"),
            ParameterSpec("patch", .integer(8...512), default: "64", "patch size in pixels, centred on each nucleus"),
            ParameterSpec("class_names", .text, default: "\"type1,type2,type3\"", "names of types 1…K, comma separated"),
            ParameterSpec("regions", .integer(2...32), default: "4", "the image is cut into regions × regions blocks for the split"),
            ParameterSpec("validation_regions", .integer(1...1000), default: "3", "blocks that go to validation"),
            ParameterSpec("test_regions", .integer(1...1000), default: "3", "blocks that go to test"),
        ])

    public static let cachedTiles = StepKind(
        name: "cached_tiles", input: nil, output: "tile",
        doc: "Every tile of an existing cache (e.g. after `ssmamba cache warm`), without reading its pixels: the input of `pretrain` on a warmed cache. Records carry no labels, so fine-tuning reads a flow's `cache` step instead.",
        parameters: [
            ParameterSpec("path", .path(mustExist: true), "the cache folder"),
            ParameterSpec("parameters", .text, optional: true, "only records of this parameter fingerprint (hexadecimal, as `ssmamba cache stats` lists them)"),
        ])

    public static let tissue = StepKind(
        name: "tissue", input: "slide", output: "slide",
        doc: "Tissue mask of each slide (saturation Otsu, pen suppression, closing, small-region removal, hole filling).",
        parameters: [
            ParameterSpec("mask_mpp", .number(1...64), default: "8", "µm per mask pixel"),
            ParameterSpec("min_saturation", .number(0...1), default: "0.07", "floor of Otsu's saturation threshold"),
            ParameterSpec("min_region_um2", .number(0...1e9), default: "20000", "tissue regions smaller than this (µm²) are dropped"),
            ParameterSpec("closing_radius", .integer(0...16), default: "1", "closing radius in mask pixels"),
            ParameterSpec("fill_holes", .flag, default: "true", "fill holes inside tissue"),
            ParameterSpec("suppress_pen", .flag, default: "true", "drop green, blue and black pen marks"),
            ParameterSpec("save_masks", .flag, default: "false", "write each mask as PNG into the run folder's masks/"),
        ])

    public static let tiles = StepKind(
        name: "tiles", input: "slide", output: "tile",
        doc: "A tissue tile grid at `mpp`, and at each position crops of `size` px centred on it at every µm/px of `scales`.",
        parameters: [
            ParameterSpec("mpp", .number(0.05...64), default: "0.5", "grid µm/px"),
            ParameterSpec("size", .integer(16...4096), default: "224", "tile size in pixels"),
            ParameterSpec("stride", .integer(1...4096), optional: true, "pixels between tiles at `mpp` (default: `size`, no overlap)"),
            ParameterSpec("scales", .numbers(0.05...64), optional: true, "µm/px of the crops at each position (default: [mpp])"),
            ParameterSpec("min_tissue", .number(0...1), default: "0.5", "least tissue fraction of a kept position (from the tissue stage before; without one every position counts as tissue)"),
            ParameterSpec("allow_upsampling", .flag, default: "false", "allow scales finer than the slide's level 0"),
            ParameterSpec("max_per_slide", .integer(1...100_000_000), optional: true, "keep at most this many positions per slide (evenly spaced)"),
        ])

    public static let decode = StepKind(
        name: "decode", input: "image", output: "tile",
        doc: "Decodes ROI images (PNG, JPEG, TIFF) into tiles, optionally centre-cropped or resized to `size`.",
        parameters: [
            ParameterSpec("size", .integer(0...4096), default: "0", "centre-crop (larger images) or area-resize to this square size; 0 keeps the image"),
            ParameterSpec("mpp", .number(0...64), default: "0", "the images' µm/px, when known (recorded with each tile)"),
        ])

    public static let stain = StepKind(
        name: "stain", input: "tile", output: "tile",
        doc: "Stain normalization to one target for the whole run; background tiles pass through unchanged and are counted (`stain.passed_through`).",
        parameters: [
            ParameterSpec("method", .choice(StainMethod.allCases.map(\.rawValue)), default: "macenko", "macenko, reinhard or vahadane"),
            ParameterSpec("target", .path(mustExist: true), "target H&E image, or a saved target (.json from `ssmamba stain --save-target`)"),
        ])

    public static let cache = StepKind(
        name: "cache", input: "tile", output: "tile",
        doc: "The LMDB tile cache: a tile already cached (same source file and same parameters of every stage before) is read instead of computed; a new one is written. Counts `cache.hits`, `cache.misses`.",
        parameters: [
            ParameterSpec("path", .path(mustExist: false), default: "cache/tiles", "cache folder (an LMDB environment)"),
            ParameterSpec("batch", .integer(1...4096), default: "64", "tiles per write transaction"),
            ParameterSpec("compression", .choice(["zstd", "none"]), default: "zstd", "record payload compression"),
        ])

    public static let export = StepKind(
        name: "export", input: "tile", output: nil,
        doc: "Writes tiles as PNG (lossless) or JPEG files with a CSV of their coordinates into the run folder (or `folder`).",
        parameters: [
            ParameterSpec("folder", .path(mustExist: false), default: "\"tiles\"", "output folder, relative to the run folder"),
            ParameterSpec("format", .choice(["png", "jpeg"]), default: "png", "png (lossless) or jpeg (smaller; 4:2:0 chroma)"),
            ParameterSpec("quality", .integer(1...100), default: "90", "JPEG quality (with `format: jpeg`)"),
        ])

    static let modelNames = ModelConfiguration.registry.keys.sorted()
    /// MAMIM needs the plain layout (R1's masked pretraining is not built).
    static let pretrainableModelNames = modelNames.filter { ModelConfiguration.registry[$0]!.layout == .plain }

    public static let pretrain = StepKind(
        name: "pretrain", input: "tile", output: nil,
        doc: "MAMIM pretraining (masked image modelling), streamed from the tile cache: each epoch a seeded permutation of every cached tile of its input, read and augmented by `readers` threads ahead of the optimizer; writes `<run>/<name>/checkpoint` and reconstruction pictures (masked input, reconstruction, original).",
        parameters: [
            ParameterSpec("model", ModelParameter.type(pretrainableModelNames), default: "ssmamba_micro", "model configuration by name (`ssmamba model list`; plain layouts: MAMIM for the hierarchical R1 is not built), or `{name: …, dim: …, directions: […], …}` with fields set (drop-path is 0 in pretraining unless `drop_path` is set); tiles must have its input size (`ssmamba model info`)"),
            ParameterSpec("steps", .integer(1...10_000_000), default: "300", "optimizer steps"),
            ParameterSpec("batch", .integer(1...4096), default: "32", "images per step"),
            ParameterSpec("lr", .number(1e-7...1), default: "1e-3", "peak learning rate (AdamW, β₂ 0.95, cosine with warm-up)"),
            ParameterSpec("warmup", .number(0...1), default: "0.1", "fraction of steps of linear warm-up"),
            ParameterSpec("weight_decay", .number(0...1), default: "0.05", "decoupled weight decay (not on biases, norms, A_log, D)"),
            ParameterSpec("mask_ratio", .number(0.05...0.95), default: "0.75", "fraction of patches hidden per image and step"),
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
            ParameterSpec("readers", .integer(1...64), default: "2", "threads reading, decoding and augmenting batches from the cache ahead of the optimizer"),
            ParameterSpec("checkpoint_every", .integer(1...10_000_000), default: "100", "steps between resumable checkpoints (`<run>/<name>/last`; also at the end and when the run is stopped)"),
        ], readsOnly: ["cache", "cached_tiles"])

    public static let finetune = StepKind(
        name: "finetune", input: "tile", output: nil,
        doc: "Supervised fine-tuning of the classifier on labelled tiles streamed from the tile cache, from scratch or from a `pretrain` step's encoder; keeps the best epoch on validation (balanced accuracy) and reports test accuracy, balanced accuracy, macro-F1 and AUC with bootstrap 95 % intervals (`<run>/<name>/metrics.json`).",
        parameters: [
            ParameterSpec("model", ModelParameter.type(modelNames), default: "ssmamba_micro", "model configuration by name (`ssmamba model list`), or `{name: …, dim: …, directions: […], …}` with fields set; with `init`, it must build the pretrained network"),
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
            ParameterSpec("readers", .integer(1...64), default: "2", "threads reading, decoding and augmenting batches from the cache ahead of the optimizer"),
            ParameterSpec("checkpoint_every", .integer(1...10_000_000), default: "100", "steps between resumable checkpoints (`<run>/<name>/last`; also at every epoch's end and when the run is stopped)"),
        ], readsOnly: ["cache", "cached_tiles"])

    public static let evaluateSlides = StepKind(
        name: "evaluate_slides", input: "tile", output: nil,
        doc: "Evaluation of slides with a fine-tuned classifier on the flow's own slide tiles (tissue → tiles → stain → cache: the preprocessing training saw), streamed from the cache slide by slide once the classifier exists: per-tile probabilities (CSV), a heatmap of one class (pyramidal TIFF aligned with the slide, PNG preview) and slide scores (`slide_scores.csv`), in `<run>/<name>/`.",
        parameters: [
            ParameterSpec("checkpoint", .text, "a `finetune` step of this flow, or a checkpoint folder"),
            ParameterSpec("mpp", .number(0.05...64), optional: true, "the crops to classify, by µm/px (default: each grid position's first scale)"),
            ParameterSpec("min_tissue", .number(0...1), default: "0", "least tissue fraction of a classified tile (the tiles stage's `min_tissue` has already filtered)"),
            ParameterSpec("batch", .integer(1...4096), default: "64", "tiles per forward pass"),
            ParameterSpec("heatmap_class", .text, optional: true, "the class whose probability the heatmap shows (default: the first)"),
            ParameterSpec("readers", .integer(1...64), default: "2", "threads reading and decoding batches from the cache ahead of the model"),
        ], readsOnly: ["cache"])

    public static let slideMIL = StepKind(
        name: "slide_mil", input: "tile", output: nil,
        doc: "Whole-slide tasks on the flow's own slide tiles (tissue → tiles → stain → cache): tile embeddings from a checkpoint's encoder (cached as safetensors), then an attention-MIL aggregator (ABMIL) for slide labels, or survival with the Cox loss; k-fold cross-validation over patients (`<run>/<name>/cross_validation.csv`, `abmil.safetensors`). Labels come from the slides source's labels CSV.",
        parameters: [
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
        ], readsOnly: ["cache"])

    /// Kinds that stream their tiles' pixels from the cache (a cache stage need not read them).
    static let streamingKinds: Set<String> = [pretrain.name, finetune.name, evaluateSlides.name, slideMIL.name]

    public static let flowCatalog = FlowCatalog(sources: [slides, roiFolder, imageCSV, nuclei, cachedTiles],
                                                stages: [tissue, tiles, decode, stain, cache, export, pretrain, finetune, evaluateSlides, slideMIL])

    /// The catalog as Markdown.
    public static var markdown: String {
        var lines = ["# Flow files: every source, stage and parameter", "",
                     "Generated by `ssmamba flow docs` from the catalog in `Sources/Stages/Catalog.swift`; a test keeps this file current.", "",
                     "A flow file names its `source:` and a list of `stages:`; each stage reads the previous one unless it says",
                     "`from:` (a step name, or a list of names to merge). Several stages reading one step get every item each (fan-out).",
                     "Relative paths start at the current directory.", "",
                     "| top-level key | meaning | default |", "|---|---|---|",
                     "| `flow` | the flow's name | required |",
                     "| `on_error` | `skip` (report the item and go on) or `fail` (stop the run) | `skip` |",
                     "| `output` | run folder (report.md, report.json, outputs) | `runs/<flow>` |",
                     "| `seed` | random seed of the flow's random stages | `0` |", "",
                     "Every stage also takes: " + FlowFile.commonStageKeys.map { "`\($0.name)` (\($0.doc))" }.joined(separator: "; ") + ".", ""]
        for (title, kinds) in [("Sources (`source: {kind: …}`)", flowCatalog.sources), ("Stages (`- stage: …`)", flowCatalog.stages)] {
            lines += ["## \(title)", ""]
            for kind in kinds {
                let io = [kind.input.map { "reads \($0)s" }, kind.output.map { "emits \($0)s" }].compactMap { $0 }.joined(separator: ", ")
                lines += ["### `\(kind.name)`", "", kind.doc + (io.isEmpty ? "" : " (\(io))"), ""]
                lines += ["| parameter | type | default | meaning |", "|---|---|---|---|"]
                for p in kind.parameters {
                    let value = p.defaultValue.map { "`\($0)`" } ?? (p.optional ? "—" : "**required**")
                    lines.append("| `\(p.name)` | \(p.type.summary) | \(value) | \(p.doc) |")
                }
                lines.append("")
            }
        }
        return lines.joined(separator: "\n")
    }
}
