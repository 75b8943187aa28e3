/// One resolution of a slide's pyramid. Level 0 is the full resolution.
public struct SlideLevel: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// Level-0 pixels per pixel of this level (mean of the two axes, as OpenSlide reports it).
    public let downsample: Double
    /// 0 for images stored in strips.
    public let tileWidth: Int
    public let tileHeight: Int
    public let compression: String
}

/// A region read at a requested resolution.
public struct SlideRegion: Sendable {
    public let image: RGBImage
    /// The pyramid level the pixels came from (the nearest level at least as fine as requested).
    public let level: Int
    public let requestedMicronsPerPixel: Double
    /// µm per output pixel actually delivered: the level-0 extent read, in µm, over the output size.
    public let effectiveMicronsPerPixel: Double
    public let level0Origin: (x: Int, y: Int)
    /// The level-0 extent the output covers.
    public let level0Size: (width: Int, height: Int)
}

/// A whole-slide image or ROI image, read by region. Coordinates are in the level-0 frame
/// (OpenSlide's convention); pixels outside the image are the background colour.
///
/// Implementations are safe to use from several tasks at once.
public protocol SlideReader: AnyObject, Sendable {
    var path: String { get }
    /// "aperio", "generic-tiff", "image", …
    var vendor: String { get }
    var levels: [SlideLevel] { get }
    /// µm per level-0 pixel: the per-slide override when given, else the file's; nil if unknown.
    var micronsPerPixel: Double? { get }
    var objectivePower: Double? { get }
    var associatedImageNames: [String] { get }
    /// Vendor and TIFF properties (`aperio.MPP`, `tiff.Software`, …).
    var properties: [String: String] { get }

    /// `size` pixels of `level`, starting at `level0Origin` (level-0 coordinates).
    func readRegion(level0Origin: (x: Int, y: Int), size: (width: Int, height: Int), level: Int) throws -> RGBImage

    /// `size` output pixels at `micronsPerPixel`, read from the nearest finer level and resampled by
    /// area averaging. Fails when the slide has no µm/px (say how to override) or when the request
    /// is finer than level 0 and `allowUpsampling` is false.
    func readRegion(level0Origin: (x: Int, y: Int), size: (width: Int, height: Int), micronsPerPixel: Double,
                    allowUpsampling: Bool) throws -> SlideRegion

    func associatedImage(_ name: String) throws -> RGBImage
}

extension SlideReader {
    public func readRegion(level0Origin: (x: Int, y: Int), size: (width: Int, height: Int),
                           micronsPerPixel: Double) throws -> SlideRegion {
        try readRegion(level0Origin: level0Origin, size: size, micronsPerPixel: micronsPerPixel, allowUpsampling: false)
    }

    /// The level whose resolution is the coarsest still at least as fine as `micronsPerPixel`
    /// (level 0 when the request is finer than every level).
    public func bestLevel(forMicronsPerPixel target: Double, base: Double) -> Int {
        var best = 0
        for (index, level) in levels.enumerated() where base * level.downsample <= target * (1 + 1e-6) {
            if level.downsample > levels[best].downsample { best = index }
        }
        return best
    }
}
