import ArgumentParser
import Distributed
import Flow
import Foundation
import SSMamba
import Stages

/// `ssmamba eval --checkpoint C --slides DIR`: evaluation of new slides without writing a flow file
/// (it builds the flow tissue → tiles → [stain] → cache → evaluate_slides and runs it).
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Streaming evaluation of slides with a fine-tuned checkpoint: tile probabilities (CSV, GeoJSON), probability maps (OME-TIFF), heatmaps (TIFF, thumbnail overlay PNG), slide scores.",
        discussion: "The same as a flow with a slides source and tissue, tiles, stain (when --stain-target is given), cache and evaluate_slides stages (see flows/eval-slides.yaml). Give the stain normalization the model was trained with: evaluation must see the training preprocessing.")

    @Option(help: "A fine-tuned checkpoint folder (e.g. runs/demo/finetune/best).") var checkpoint: String
    @Option(help: "A slide, a folder of slides or a glob.") var slides: String
    @Option(help: "File pattern inside a folder (default: every slide file, \(PathPattern.slideFiles)).") var pattern = PathPattern.slideFiles
    @Option(help: "µm/px of the tiles (as in training).") var mpp = 0.5
    @Option(help: "Pixels between tiles at --mpp (default: the model's image size, no overlap); a smaller stride overlaps the tiles and smooths the maps.") var stride: Int?
    @Option(name: .customLong("min-tissue"), help: "Least tissue fraction of a classified tile.") var minimumTissue = 0.5
    @Option(name: .customLong("heatmap-class"), help: "The class whose probability the heatmaps show (default: the first).") var heatmapClass: String?
    @Option(name: .customLong("mpp-override"), help: "Level-0 µm/px for slides that do not record it.") var micronsPerPixelOverride: Double?
    @Option(name: .customLong("stain-method"), help: "Stain normalization as in training: macenko, reinhard or vahadane (with --stain-target).") var stainMethod = "macenko"
    @Option(name: .customLong("stain-target"), help: "The stain target used in training (an image, or a saved target .json); none: no normalization.") var stainTarget: String?
    @Option(help: "Tile cache folder.") var cache = "cache/eval"
    @Option(help: "Run folder.") var out = "runs/eval"
    @Flag(help: "Replace an earlier evaluation in the run folder (without it, a folder holding a run is refused).") var overwrite = false

    func run() throws {
        // The checkpoint's classes, checked before any slide is read.
        let manifest: Checkpoint.Manifest
        do {
            manifest = try Checkpoint.readManifest(from: URL(fileURLWithPath: checkpoint))
        } catch {
            throw CommandFailure("\(checkpoint): not a readable checkpoint (\(error))")
        }
        let classes = manifest.notes["classes"]?.split(separator: ",").map(String.init) ?? (0..<manifest.model.classes).map { "class\($0)" }
        if let heatmapClass, !classes.contains(heatmapClass) {
            throw CommandFailure("--heatmap-class '\(heatmapClass)' is not one of the checkpoint's classes: \(classes.joined(separator: ", "))")
        }
        // The flow as a typed value, checked like a flow file (flows/eval-slides.yaml is the same flow).
        var source: [String: ParameterValue] = ["path": .text(slides), "pattern": .text(pattern)]
        if let micronsPerPixelOverride { source["mpp_override"] = .number(micronsPerPixelOverride) }
        var tiles: [String: ParameterValue] = ["mpp": .number(mpp), "size": .integer(manifest.model.imageSize), "min_tissue": .number(minimumTissue)]
        if let stride { tiles["stride"] = .integer(stride) }
        var stages: [FlowDraft.Step] = [FlowDraft.Step("tissue"), FlowDraft.Step("tiles", workers: 2, tiles)]
        if let stainTarget {
            stages.append(FlowDraft.Step("stain", workers: 2, ["method": .text(stainMethod), "target": .text(stainTarget)]))
        }
        stages.append(FlowDraft.Step("cache", ["path": .text(cache)]))
        var evaluation: [String: ParameterValue] = ["checkpoint": .text(checkpoint)]
        if let heatmapClass { evaluation["heatmap_class"] = .text(heatmapClass) }
        stages.append(FlowDraft.Step("evaluate_slides", evaluation))
        let draft = FlowDraft(name: "eval", output: out, source: FlowDraft.Step("slides", source), stages: stages)
        let file: FlowFile
        do {
            file = try draft.validated(path: "ssmamba eval", catalog: Catalog.flowCatalog)
        } catch let error as FlowFileError {
            throw CommandFailure(error.issues.map(\.message).joined(separator: "\n"))
        }
        try FlowCommands.execute(file, out: out, earlier: overwrite ? .replace : .refuse)
        if Communicator.world.isRoot { print("slide scores: \(out)/evaluate_slides/slide_scores.csv") }
    }
}
