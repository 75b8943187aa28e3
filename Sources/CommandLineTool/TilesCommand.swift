import ArgumentParser
import Foundation
import Slides
import Tiling

/// `ssmamba tiles SLIDE --mpp M --size S --out DIR`: tissue tiles as PNG plus a CSV.
struct TilesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tiles",
        abstract: "Export the tissue tiles of a slide as PNG files with a CSV of coordinates (multi-magnification with --scales).")

    @Argument(help: "A slide (SVS, TIFF, NDPI, VMS, MIRAX, Philips, Leica, Ventana, …) or a PNG, JPEG or TIFF image.") var slide: String
    @Option(help: "Which library reads the slide: automatic, native or openslide.") var reader: SlideBackend = .automatic
    @Option(help: "Grid µm/px.") var mpp: Double
    @Option(help: "Tile size in pixels.") var size: Int = 224
    @Option(help: "Grid stride in pixels at the grid's µm/px (default: the tile size, no overlap).") var stride: Int?
    @Option(help: "Comma-separated µm/px of the crops at each position (default: the grid's).") var scales: String?
    @Option(name: .customLong("min-tissue"), help: "Least tissue fraction of a kept tile.") var minimumTissue = 0.5
    @Option(name: .customLong("mpp-override"), help: "Use this µm/px for level 0.") var micronsPerPixelOverride: Double?
    @Flag(name: .customLong("allow-upsampling"), help: "Allow scales finer than level 0.") var allowUpsampling = false
    @Option(help: "Output folder.") var out: String

    func run() throws {
        let scaleList: [Double]
        if let scales {
            let parsed = scales.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
            guard !parsed.isEmpty, parsed.allSatisfy({ ($0 ?? 0) > 0 }) else {
                throw ValidationError("--scales takes positive µm/px separated by commas, e.g. 0.5,1,2")
            }
            scaleList = parsed.map { $0! }
        } else {
            scaleList = [mpp]
        }
        guard size > 0 else { throw ValidationError("--size must be positive") }
        do {
            let reader = try Slide.open(slide, micronsPerPixelOverride: micronsPerPixelOverride, backend: self.reader)
            let cropper = MultiScaleCropper(scales: scaleList, size: size, allowUpsampling: allowUpsampling)
            try cropper.validate(reader)
            let mask = try TissueDetector().detect(reader)
            let grid = TileGrid(micronsPerPixel: mpp, size: size, stride: stride, minimumTissue: minimumTissue)
            let positions = try grid.positions(slideWidth: reader.levels[0].width, slideHeight: reader.levels[0].height,
                                               slideMicronsPerPixel: reader.micronsPerPixel, mask: mask, path: slide)
            let folder = URL(fileURLWithPath: out)
            try CommandFailure.makeOutputFolder(folder)
            var csv = TileTable.header()
            let stem = ((slide as NSString).lastPathComponent as NSString).deletingPathExtension
            let progress = CommandProgress(total: positions.count, label: "tiles")
            for position in positions {
                for tile in try cropper.crops(reader, at: position) {
                    let name = String(format: "%@_c%04d_r%04d_%gmpp.png", stem, tile.column, tile.row, tile.requestedMicronsPerPixel)
                    try PNGWriter.write(tile.image, to: folder.appendingPathComponent(name))
                    csv += TileTable.line(TileTable.Row(tile, size: size, slideMicronsPerPixel: reader.micronsPerPixel, file: name))
                }
                progress.advance()
            }
            try Data(csv.utf8).write(to: folder.appendingPathComponent("tiles.csv"), options: .atomic)
            progress.finish()
            print(String(format: "wrote %d positions × %d scales to %@ (tissue %.1f %% of the slide); coordinates in %@/tiles.csv",
                         positions.count, scaleList.count, out, 100 * mask.tissueFraction, out))
        } catch let error as SlideError {
            throw CommandFailure(error.description)
        }
    }
}
