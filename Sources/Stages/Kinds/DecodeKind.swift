import Flow
import Tiling

/// `decode`: ROI image files into tiles.
enum DecodeKind: StageKind {
    static let name = "decode"
    static let doc = "Decodes ROI images (PNG, JPEG, TIFF) into tiles, optionally centre-cropped or resized to `size`."
    static let parameters = [
        ParameterSpec("size", .integer(0...4096), default: "0", "centre-crop (larger images) or area-resize to this square size; 0 keeps the image"),
        ParameterSpec("mpp", .number(0...64), default: "0", "the images' µm/px, when known (recorded with each tile)"),
    ]

    struct Parameters: Decodable {
        var size: Int
        var mpp: Double
    }

    static func make(_ p: Parameters, _ step: StepAssembly) throws -> Built<ImageItem, Tile> {
        .stage(DecodeStage(size: p.size, micronsPerPixel: p.mpp))
    }
}
