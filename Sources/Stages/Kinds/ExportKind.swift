import Flow
import Tiling

/// `export`: tiles as image files with a table of their coordinates.
enum ExportKind: StageKind {
    static let name = "export"
    static let doc = "Writes tiles as PNG (lossless) or JPEG files with a CSV of their coordinates into the run folder (or `folder`)."
    static let parameters = [
        ParameterSpec("folder", .path(mustExist: false), default: "\"tiles\"", "output folder, relative to the run folder"),
        ParameterSpec("format", .choice(["png", "jpeg"]), default: "png", "png (lossless) or jpeg (smaller; 4:2:0 chroma)"),
        ParameterSpec("quality", .integer(1...100), default: "90", "JPEG quality (with `format: jpeg`)"),
    ]
    /// Every rank would write the same files: not shared out yet.
    static let runsOnSeveralProcesses = false

    struct Parameters: Decodable {
        var folder: String
        var format: String
        var quality: Int
    }

    static func make(_ p: Parameters, _ step: StepAssembly) throws -> Built<Tile, Never> {
        .stage(try ExportStage(folder: step.inRunFolder(p.folder), jpegQuality: p.format == "jpeg" ? p.quality : nil))
    }
}
