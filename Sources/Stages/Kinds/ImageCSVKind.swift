import Flow

/// `image_csv`: ROI images listed in a CSV.
enum ImageCSVKind: StageKind {
    static let name = "image_csv"
    static let doc = "A CSV of image paths (column `path`, relative to the CSV's folder) with `label` and an optional `split` column."
    static let parameters = [
        ParameterSpec("path", .path(mustExist: true), shapesPixels: false, "the CSV file"),
    ]

    struct Parameters: Decodable {
        var path: String
    }

    static func make(_ p: Parameters, _ step: StepAssembly) throws -> Built<Never, ImageItem> {
        let items = try Sources.imageCSV(p.path)
        return .source { context in for item in items { try context.emit(item) } }
    }
}
