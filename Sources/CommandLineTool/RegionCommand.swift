import ArgumentParser
import Foundation
import Slides

/// `ssmamba region SLIDE …`: one region, by level or by µm/px, to a PNG file.
struct RegionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "region",
        abstract: "Write one region of a slide to a PNG or tiled TIFF file (x, y in the level-0 frame).",
        discussion: "A .tif/.tiff output is a tiled pyramidal TIFF (deflate) carrying the region's µm/px when known.")

    @Argument(help: "A slide (SVS, TIFF, NDPI, VMS, MIRAX, Philips, Leica, Ventana, …) or a PNG, JPEG or TIFF image.") var slide: String
    @Option(help: "Which library reads the slide: automatic, native or openslide.") var reader: SlideBackend = .automatic
    @Option(help: "Left edge, level-0 pixels.") var x: Int
    @Option(help: "Top edge, level-0 pixels.") var y: Int
    @Option(help: "Output width in pixels.") var width: Int
    @Option(help: "Output height in pixels.") var height: Int
    @Option(help: "Read this pyramid level as stored.") var level: Int?
    @Option(help: "Read at this µm/px from the nearest finer level, resampled.") var mpp: Double?
    @Option(name: .customLong("mpp-override"), help: "Use this µm/px for level 0.") var micronsPerPixelOverride: Double?
    @Flag(name: .customLong("allow-upsampling"), help: "With --mpp, allow a µm/px finer than level 0 (resampled up).") var allowUpsampling = false
    @Option(help: "Output file (.png, .tif or .tiff).") var out: String

    func validate() throws {
        guard (level == nil) != (mpp == nil) else { throw ValidationError("give exactly one of --level and --mpp") }
        guard width > 0 && height > 0 else { throw ValidationError("--width and --height must be positive") }
        guard [".png", ".tif", ".tiff"].contains(where: { out.lowercased().hasSuffix($0) }) else {
            throw ValidationError("--out must name a .png, .tif or .tiff file")
        }
    }

    func run() throws {
        do {
            let reader = try Slide.open(slide, micronsPerPixelOverride: micronsPerPixelOverride, backend: self.reader)
            if let level {
                let image = try reader.readRegion(level0Origin: (x, y), size: (width, height), level: level)
                try save(image, micronsPerPixel: reader.micronsPerPixel.map { $0 * reader.levels[level].downsample })
                print("wrote \(out): \(width)×\(height) from level \(level)")
            } else if let mpp {
                let region = try reader.readRegion(level0Origin: (x, y), size: (width, height), micronsPerPixel: mpp, allowUpsampling: allowUpsampling)
                try save(region.image, micronsPerPixel: region.effectiveMicronsPerPixel)
                print(String(format: "wrote %@: %d×%d at %.4f µm/px (requested %.4f) from level %d", out, width, height,
                             region.effectiveMicronsPerPixel, mpp, region.level))
            }
        } catch let error as SlideError {
            throw CommandFailure(error.description)
        }
    }

    private func save(_ image: RGBImage, micronsPerPixel: Double?) throws {
        let url = URL(fileURLWithPath: out)
        if out.lowercased().hasSuffix(".png") {
            try PNGWriter.write(image, to: url)
        } else {
            try PyramidWriter.write(image, to: url, micronsPerPixel: micronsPerPixel, compression: .deflate)
        }
    }
}
