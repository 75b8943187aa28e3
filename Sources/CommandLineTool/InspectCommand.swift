import ArgumentParser
import Foundation
import Slides

extension SlideBackend: ExpressibleByArgument {}

/// `ssmamba inspect SLIDE`: levels, µm/px, objective power, associated images, properties.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show a slide's levels, µm/px, objective power, associated images and properties.")

    @Argument(help: "A slide (SVS, TIFF, NDPI, VMS, MIRAX, Philips, Leica, Ventana, …) or an image.") var slide: String
    @Option(name: .customLong("mpp-override"), help: "Use this µm/px for level 0 (for slides that lack or misreport it).")
    var micronsPerPixelOverride: Double?
    @Option(help: "Which library reads the slide: automatic (native TIFF reader where it applies, else OpenSlide), native or openslide.")
    var reader: SlideBackend = .automatic
    @Flag(help: "Print JSON instead of text.") var json = false
    @Flag(name: .customLong("all-properties"), help: "List every property, not a selection.") var allProperties = false

    func run() throws {
        let reader: any SlideReader
        do { reader = try Slide.open(slide, micronsPerPixelOverride: micronsPerPixelOverride, backend: self.reader) } catch {
            throw CommandFailure(String(describing: error))
        }
        let selected = ["openslide.vendor", "openslide.mpp-x", "openslide.mpp-y", "openslide.objective-power", "hamamatsu.SourceLens", "aperio.AppMag", "aperio.MPP", "aperio.ScanScope ID", "aperio.Date", "tiff.Software", "tiff.ResolutionUnit"]
        let shown = allProperties ? reader.properties.filter { $0.key != "tiff.ImageDescription" } : reader.properties.filter { selected.contains($0.key) }
        if json {
            let object: [String: Any] = [
                "path": reader.path, "vendor": reader.vendor,
                "microns_per_pixel": reader.micronsPerPixel as Any? ?? NSNull(),
                "objective_power": reader.objectivePower as Any? ?? NSNull(),
                "levels": reader.levels.map { level -> [String: Any] in
                    ["width": level.width, "height": level.height, "downsample": level.downsample,
                     "microns_per_pixel": reader.micronsPerPixel.map { $0 * level.downsample } as Any? ?? NSNull(),
                     "tile_width": level.tileWidth, "tile_height": level.tileHeight, "compression": level.compression]
                },
                "associated_images": reader.associatedImageNames, "properties": shown,
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("\(reader.path)")
        print("  vendor            \(reader.vendor)")
        let mpp = reader.micronsPerPixel.map { String(format: "%.4f µm/px%@", $0, micronsPerPixelOverride != nil ? " (override)" : "") }
            ?? "unknown (use --mpp-override to read by resolution)"
        print("  level-0 µm/px     \(mpp)")
        print("  objective power   \(reader.objectivePower.map { String(format: "%g×", $0) } ?? "unknown")")
        print("  levels")
        for (i, level) in reader.levels.enumerated() {
            let tiles = level.tileWidth > 0 ? "\(level.tileWidth)×\(level.tileHeight) tiles" : "strips"
            let levelMPP = reader.micronsPerPixel.map { String(format: ", %.4f µm/px", $0 * level.downsample) } ?? ""
            print("    \(i)  \(level.width)×\(level.height)  downsample \(String(format: "%.3f", level.downsample))\(levelMPP), \(tiles), \(level.compression)")
        }
        print("  associated images \(reader.associatedImageNames.isEmpty ? "none" : reader.associatedImageNames.joined(separator: ", "))")
        for key in shown.keys.sorted() { print("  \(key) = \(shown[key]!)") }
    }
}
