import Flow

/// `tissue`: the tissue mask of each slide.
enum TissueKind: StageKind {
    static let name = "tissue"
    static let doc = "Tissue mask of each slide (saturation Otsu, pen suppression, closing, small-region removal, hole filling)."
    static let parameters = [
        ParameterSpec("mask_mpp", .number(1...64), default: "8", "µm per mask pixel"),
        ParameterSpec("min_saturation", .number(0...1), default: "0.07", "floor of Otsu's saturation threshold"),
        ParameterSpec("min_region_um2", .number(0...1e9), default: "20000", "tissue regions smaller than this (µm²) are dropped"),
        ParameterSpec("closing_radius", .integer(0...16), default: "1", "closing radius in mask pixels"),
        ParameterSpec("fill_holes", .flag, default: "true", "fill holes inside tissue"),
        ParameterSpec("suppress_pen", .flag, default: "true", "drop green, blue and black pen marks"),
        ParameterSpec("save_masks", .flag, default: "false", shapesPixels: false, "write each mask as PNG, and its outlines as GeoJSON QuPath imports (`<slide>.tissue.geojson`, level-0 pixels), into the run folder's masks/"),
    ]

    struct Parameters: Decodable {
        var maskMpp: Double
        var minSaturation: Double
        var minRegionUm2: Double
        var closingRadius: Int
        var fillHoles: Bool
        var suppressPen: Bool
        var saveMasks: Bool
    }

    static func make(_ p: Parameters, _ step: StepAssembly) throws -> Built<SlideItem, SlideItem> {
        .stage(TissueStage(p, masks: p.saveMasks ? step.runFolder.appendingPathComponent("masks") : nil))
    }
}
