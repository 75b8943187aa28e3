import ArgumentParser
import Flow
import Foundation
import SSMamba
import Stages

/// `ssmamba eval --checkpoint C --slides DIR`: streaming evaluation of new slides without writing a
/// flow file (it builds the flow tissue → evaluate_slides and runs it).
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Streaming evaluation of slides with a fine-tuned checkpoint: tile probabilities, heatmaps (TIFF + PNG), slide scores.",
        discussion: "The same as a flow with a slides source, a tissue stage and an evaluate_slides stage (see flows/eval-slides.yaml).")

    @Option(help: "A fine-tuned checkpoint folder (e.g. runs/demo/finetune/best).") var checkpoint: String
    @Option(help: "A slide, a folder of slides or a glob.") var slides: String
    @Option(help: "File pattern inside a folder.") var pattern = "*.svs"
    @Option(help: "µm/px of the tiles (as in training).") var mpp = 0.5
    @Option(name: .customLong("min-tissue"), help: "Least tissue fraction of a classified tile.") var minimumTissue = 0.5
    @Option(name: .customLong("heatmap-class"), help: "The class whose probability the heatmaps show (default: the first).") var heatmapClass: String?
    @Option(name: .customLong("mpp-override"), help: "Level-0 µm/px for slides that do not record it.") var micronsPerPixelOverride: Double?
    @Option(help: "Run folder.") var out = "runs/eval"

    func run() throws {
        // The checkpoint's classes, checked before any slide is read.
        let manifest: Checkpoint.Manifest
        do {
            manifest = try Checkpoint.read(from: URL(fileURLWithPath: checkpoint)).manifest
        } catch {
            throw CommandFailure("\(checkpoint): not a readable checkpoint (\(error))")
        }
        let classes = manifest.notes["classes"]?.split(separator: ",").map(String.init) ?? (0..<manifest.model.classes).map { "class\($0)" }
        if let heatmapClass, !classes.contains(heatmapClass) {
            throw CommandFailure("--heatmap-class '\(heatmapClass)' is not one of the checkpoint's classes: \(classes.joined(separator: ", "))")
        }
        func quoted(_ text: String) -> String { "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\"" }
        var yaml = """
            flow: eval
            output: \(quoted(out))
            source:
              kind: slides
              path: \(quoted(slides))
              pattern: \(quoted(pattern))

            """
        if let micronsPerPixelOverride { yaml += "  mpp_override: \(micronsPerPixelOverride)\n" }
        yaml += """
            stages:
              - stage: tissue
              - stage: evaluate_slides
                checkpoint: \(quoted(checkpoint))
                mpp: \(mpp)
                min_tissue: \(minimumTissue)

            """
        if let heatmapClass { yaml += "    heatmap_class: \(quoted(heatmapClass))\n" }
        let file: FlowFile
        do {
            file = try FlowFile.parse(yaml, path: "ssmamba eval", catalog: Catalog.flowCatalog)
        } catch let error as FlowFileError {
            throw CommandFailure(error.issues.map(\.message).joined(separator: "\n"))
        }
        try FlowCommands.execute(file, out: out)
        print("slide scores: \(out)/evaluate_slides/slide_scores.csv")
    }
}
