import ArgumentParser
import Foundation
import Slides
import Tiling

/// `ssmamba tissue SLIDE`: the tissue mask and fraction of a slide.
struct TissueCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tissue",
        abstract: "Detect tissue: print the tissue fraction and write the mask (PNG, or pyramidal TIFF aligned by µm/px).")

    @Argument(help: "A slide (SVS, TIFF, NDPI, VMS, MIRAX, Philips, Leica, Ventana, …) or a PNG, JPEG or TIFF image.") var slide: String
    @Option(help: "Which library reads the slide: automatic, native or openslide.") var reader: SlideBackend = .automatic
    @Option(help: "Write the mask to this .png, .tif or .tiff file.") var out: String?
    @Flag(help: "Print JSON instead of text.") var json = false
    @Option(name: .customLong("mpp-override"), help: "Use this µm/px for level 0.") var micronsPerPixelOverride: Double?
    @Option(name: .customLong("mask-mpp"), help: "µm per mask pixel.") var maskMicronsPerPixel = TissueDetector.Parameters().micronsPerPixel
    @Flag(name: .customLong("keep-pen"), help: "Do not suppress pen marks.") var keepPen = false

    func validate() throws {
        guard maskMicronsPerPixel >= 1 && maskMicronsPerPixel <= 64 else {
            throw ValidationError("--mask-mpp must be within 1…64 µm per mask pixel (the flow's `mask_mpp` range), got \(maskMicronsPerPixel)")
        }
    }

    func run() throws {
        do {
            let reader = try Slide.open(slide, micronsPerPixelOverride: micronsPerPixelOverride, backend: self.reader)
            var parameters = TissueDetector.Parameters()
            parameters.micronsPerPixel = maskMicronsPerPixel
            parameters.suppressPen = !keepPen
            let started = Date()
            let mask = try TissueDetector(parameters: parameters).detect(reader)
            let seconds = Date().timeIntervalSince(started)
            if let out {
                let url = URL(fileURLWithPath: out)
                if out.lowercased().hasSuffix(".png") { try mask.writePNG(to: url) } else { try mask.writePyramid(to: url) }
            }
            if json {
                // Absent values (no µm/px, no mask file) are left out rather than written as null.
                var fields: [String: Any] = [
                    "slide": slide, "tissue_fraction": mask.tissueFraction, "mask_width": mask.width, "mask_height": mask.height,
                    "mask_downsample": mask.downsample, "seconds": seconds,
                ]
                if let mpp = mask.micronsPerPixel { fields["mask_mpp"] = mpp }
                if let out { fields["mask_file"] = out }
                let data = try JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys, .prettyPrinted])
                print(String(decoding: data, as: UTF8.self))
            } else {
                print(String(format: "%@: tissue %.1f %% (mask %d×%d, %@ per pixel)%@", slide, 100 * mask.tissueFraction, mask.width, mask.height,
                             mask.micronsPerPixel.map { String(format: "%.2f µm", $0) } ?? String(format: "%.0f level-0 px (no µm/px; --mpp-override gives one)", mask.downsample),
                             out.map { "; mask written to \($0)" } ?? ""))
            }
        } catch let error as SlideError {
            throw CommandFailure(error.description)
        }
    }
}
