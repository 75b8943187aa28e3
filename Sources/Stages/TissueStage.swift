import Flow
import Foundation
import Slides
import Tiling

/// `tissue`: adds the tissue mask to each slide (and writes it as PNG when asked).
struct TissueStage: Stage {
    let detector: TissueDetector
    let maskFolder: URL?

    /// Masks are written as PNG into `masks` when given.
    init(_ p: TissueKind.Parameters, masks: URL?) {
        var parameters = TissueDetector.Parameters()
        parameters.micronsPerPixel = p.maskMpp
        parameters.minimumSaturation = p.minSaturation
        parameters.minimumRegionArea = p.minRegionUm2
        parameters.closingRadius = p.closingRadius
        parameters.fillHoles = p.fillHoles
        parameters.suppressPen = p.suppressPen
        detector = TissueDetector(parameters: parameters)
        maskFolder = masks
    }

    func process(_ input: SlideItem, _ context: StageContext<SlideItem>) throws {
        var slide = input
        let mask = try detector.detect(slide.reader)
        slide.mask = mask
        context.count("tissue.slides")
        if let maskFolder {
            try FileManager.default.createDirectory(at: maskFolder, withIntermediateDirectories: true)
            let stem = ((slide.path as NSString).lastPathComponent as NSString).deletingPathExtension
            try mask.writePNG(to: maskFolder.appendingPathComponent("\(stem).png"))
            // The outlines for QuPath (File › Import objects), in level-0 pixels.
            try mask.geoJSON().write(to: maskFolder.appendingPathComponent("\(stem).tissue.geojson"), options: .atomic)
        }
        try context.emit(slide)
    }
}
