import Foundation

/// A single PNG, JPEG or TIFF image (an ROI, a tile) read as a one-level slide, so tissue
/// detection, tiling and region reads work on it as on a whole-slide image. Its µm/px is the
/// override when given, else unknown (read by level, or give one). Pixels outside the image are
/// white.
public final class ImageSlide: SlideReader, @unchecked Sendable {
    public let path: String
    public let vendor = "image"
    public let levels: [SlideLevel]
    public let micronsPerPixel: Double?
    public let objectivePower: Double? = nil
    public let associatedImageNames: [String] = []
    public let properties: [String: String]
    private let image: RGBImage

    public init(path: String, micronsPerPixelOverride: Double? = nil) throws {
        if let override = micronsPerPixelOverride, !(0.01...100).contains(override) {
            throw SlideError(.invalidRequest, path, "the µm/px override \(override) is outside 0.01…100; give the image's µm/px (e.g. 0.5 for a 20× scan)")
        }
        self.path = path
        image = try ImageFile.read(path)
        levels = [SlideLevel(width: image.width, height: image.height, downsample: 1, tileWidth: 0, tileHeight: 0,
                             compression: (path as NSString).pathExtension.lowercased())]
        micronsPerPixel = micronsPerPixelOverride
        properties = ["image.width": "\(image.width)", "image.height": "\(image.height)"]
    }

    public func readRegion(level0Origin origin: (x: Int, y: Int), size: (width: Int, height: Int), level: Int) throws -> RGBImage {
        try checkRequest(origin: origin, size: size)
        guard level == 0 else { throw SlideError(.invalidRequest, path, "level \(level) does not exist; an image has level 0 only") }
        guard origin.x < image.width && origin.y < image.height && origin.x + size.width > 0 && origin.y + size.height > 0 else {
            throw SlideError(.invalidRequest, path, "region at (\(origin.x), \(origin.y)) of \(size.width)×\(size.height) lies entirely outside the \(image.width)×\(image.height) image")
        }
        if origin == (0, 0) && size == (image.width, image.height) { return image }
        var out = RGBImage(width: size.width, height: size.height, filling: (255, 255, 255))
        let x0 = max(0, origin.x), x1 = min(image.width, origin.x + size.width)
        for y in max(0, origin.y)..<min(image.height, origin.y + size.height) {
            let from = (y * image.width + x0) * 3, to = ((y - origin.y) * size.width + (x0 - origin.x)) * 3
            out.pixels.replaceSubrange(to..<(to + (x1 - x0) * 3), with: image.pixels[from..<(from + (x1 - x0) * 3)])
        }
        return out
    }

    public func associatedImage(_ name: String) throws -> RGBImage {
        throw SlideError(.invalidRequest, path, "an image has no associated images")
    }
}

/// Which library reads a slide: `automatic` (the native TIFF reader for Aperio and generic tiled
/// TIFF, OpenSlide for the other vendor formats, the image decoder for PNG/JPEG), or one forced.
public enum SlideBackend: String, Sendable, CaseIterable {
    case automatic, native, openslide
}

/// Opens a slide or an image: Aperio SVS and tiled TIFF through the native `TIFFSlide`, the other
/// formats OpenSlide recognizes (NDPI, VMS, MIRAX, Philips, Leica, Ventana, …) through
/// `OpenSlideSlide`, PNG and JPEG files as one-level `ImageSlide`s.
public enum Slide {
    /// The vendors the native reader handles itself; OpenSlide reads every other one it detects.
    static let nativeVendors: Set<String> = ["aperio", "generic-tiff"]

    /// Opens with the µm/px the file records, or with `fallback` when it records none or an
    /// implausible one (a flow's `mpp_override:`, an evaluation grid's µm/px); without a fallback,
    /// `open(path)`.
    public static func open(_ path: String, fallbackMicronsPerPixel fallback: Double?) throws -> SlideReader {
        guard let fallback else { return try open(path) }
        let reader: SlideReader
        do { reader = try open(path) } catch let error as SlideError where error.kind == .missingResolution {
            return try open(path, micronsPerPixelOverride: fallback)
        }
        return reader.micronsPerPixel == nil ? try open(path, micronsPerPixelOverride: fallback) : reader
    }

    public static func open(_ path: String, micronsPerPixelOverride: Double? = nil, backend: SlideBackend = .automatic) throws -> SlideReader {
        switch backend {
        case .native:
            return try TIFFSlide(path: path, micronsPerPixelOverride: micronsPerPixelOverride)
        case .openslide:
            return try OpenSlideSlide(path: path, micronsPerPixelOverride: micronsPerPixelOverride)
        case .automatic:
            let ext = (path as NSString).pathExtension.lowercased()
            if ["png", "jpg", "jpeg"].contains(ext) { return try ImageSlide(path: path, micronsPerPixelOverride: micronsPerPixelOverride) }
            if let vendor = OpenSlideSlide.detectVendor(path), !nativeVendors.contains(vendor) {
                return try OpenSlideSlide(path: path, micronsPerPixelOverride: micronsPerPixelOverride)
            }
            return try TIFFSlide(path: path, micronsPerPixelOverride: micronsPerPixelOverride)
        }
    }
}
