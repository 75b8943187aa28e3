import Flow

/// `roi_folder`: ROI images in one sub-folder per class.
enum ROIFolderKind: StageKind {
    static let name = "roi_folder"
    static let doc = "Region-of-interest images in one sub-folder per class (NCT-CRC-HE style); the folder name is the label."
    static let parameters = [
        ParameterSpec("path", .path(mustExist: true), shapesPixels: false, "the folder holding one sub-folder per class"),
        ParameterSpec("extensions", .text, default: "\"png,jpg,jpeg,tif,tiff\"", "file extensions to take, comma separated"),
    ]

    struct Parameters: Decodable {
        var path: String
        var extensions: String
    }

    static func make(_ p: Parameters, _ step: StepAssembly) throws -> Built<Never, ImageItem> {
        let items = try Sources.roiFolder(p.path, extensions: p.extensions)
        return .source { context in for item in items { try context.emit(item) } }
    }
}
