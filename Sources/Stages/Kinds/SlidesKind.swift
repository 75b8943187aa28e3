import Foundation
import Flow

/// `slides`: whole-slide images with their labels.
enum SlidesKind: StageKind {
    static let name = "slides"
    static let doc = "Whole-slide images (TIFF/SVS) from a file, a folder or a glob, with optional labels."
    static let parameters = [
        ParameterSpec("path", .path(mustExist: true), shapesPixels: false, "a slide, a folder of slides, or a glob such as data/*.svs"),
        ParameterSpec("pattern", .text, default: "\"\(PathPattern.slideFiles)\"", shapesPixels: false, "file name pattern when `path` is a folder (braces list alternatives)"),
        ParameterSpec("labels", .path(mustExist: true), optional: true, shapesPixels: false,
                      "CSV with a `slide` column (file name or path) and optional patient, label, time, event columns"),
        ParameterSpec("mpp_override", .number(0.01...100), optional: true, "level-0 µm/px for slides that do not record it (slides that record one keep theirs)"),
        ParameterSpec("shard", .text, optional: true, shapesPixels: false, "i/n: only every n-th slide from the i-th (0-based); `ssmamba cache warm --shard` sets it"),
        ParameterSpec("annotations", .path(mustExist: true), optional: true, shapesPixels: false,
                      "folder of QuPath GeoJSON exports, `<slide name>.geojson` per slide (level-0 pixels): only tiles centred inside their polygons are cut, labelled by the annotation's class; a slide without a file is reported and skipped"),
    ]

    struct Parameters: Decodable {
        var path: String
        var pattern: String
        var labels: String?
        var mppOverride: Double?
        var shard: String?
        var annotations: String?
    }

    static func make(_ p: Parameters, _ step: StepAssembly) throws -> Built<Never, SlideItem> {
        .source(Sources.slides(try SlideListing(p), micronsPerPixelOverride: p.mppOverride, annotations: p.annotations.map { URL(fileURLWithPath: $0) }))
    }
}
