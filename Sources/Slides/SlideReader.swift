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
    /// Every file the pixels come from, `path` first: one for most formats; a VMS index with its
    /// JPEG stripes, a MIRAX file with its data folder's files.
    var files: [String] { get }

    /// `size` pixels of `level`, starting at `level0Origin` (level-0 coordinates).
    func readRegion(level0Origin: (x: Int, y: Int), size: (width: Int, height: Int), level: Int) throws -> RGBImage

    /// `size` output pixels at `micronsPerPixel`, read from the nearest finer level and resampled by
    /// area averaging. Fails when the slide has no µm/px (say how to override) or when the request
    /// is finer than level 0 and `allowUpsampling` is false.
    func readRegion(level0Origin: (x: Int, y: Int), size: (width: Int, height: Int), micronsPerPixel: Double,
                    allowUpsampling: Bool) throws -> SlideRegion

    func associatedImage(_ name: String) throws -> RGBImage
}

/// The level-0 µm/px a reader reports: the override when given, else the recorded value. Either
/// outside 0.01…100 is refused (a mistyped override; a damaged or hostile header, whose arithmetic
/// would overflow further on), saying what to do.
func resolvedMicronsPerPixel(override: Double?, recorded: Double?, path: String) throws -> Double? {
    let plausible: ClosedRange<Double> = 0.01...100
    if let override {
        guard plausible.contains(override) else {
            throw SlideError(.invalidRequest, path, "the µm/px override \(override) is outside \(plausible.lowerBound)…\(plausible.upperBound); give the scanner's level-0 µm/px (e.g. 0.25 at 40×, 0.5 at 20×)")
        }
        return override
    }
    if let recorded, !plausible.contains(recorded) {
        throw SlideError(.missingResolution, path, "the file records \(recorded) µm/px, outside \(plausible.lowerBound)…\(plausible.upperBound) (a damaged header?); set `mpp_override:` in the flow's source (or --mpp-override) to the scanner's level-0 µm/px")
    }
    return recorded
}

extension SlideReader {
    public var files: [String] { [path] }

    /// The largest level-0 coordinate a request may name: 2⁴⁰ pixels (275 km at 0.25 µm/px) is
    /// beyond any slide, and keeps every sum and product of coordinates and sizes far from overflow.
    public static var coordinateLimit: Int { 1 << 40 }

    /// Checks a region request's numbers before any arithmetic on them: a size of 1…2²⁸ pixels in
    /// all, and an origin within ±`coordinateLimit`.
    public func checkRequest(origin: (x: Int, y: Int), size: (width: Int, height: Int)) throws {
        guard size.width > 0 && size.height > 0 else {
            throw SlideError(.invalidRequest, path, "region size \(size.width)×\(size.height) must be positive")
        }
        let (area, overflow) = size.width.multipliedReportingOverflow(by: size.height)
        guard !overflow, area <= 1 << 28 else {
            throw SlideError(.invalidRequest, path, "region of \(size.width)×\(size.height) pixels is too large for one read (at most 2²⁸ pixels); read it in tiles")
        }
        guard abs(origin.x) <= Self.coordinateLimit && abs(origin.y) <= Self.coordinateLimit else {
            throw SlideError(.invalidRequest, path, "region origin (\(origin.x), \(origin.y)) lies outside the \(levels[0].width)×\(levels[0].height) slide")
        }
    }

    /// `size` output pixels at `target` µm/px from the nearest level at least as fine, area-averaged
    /// (the protocol's requirement, the same for every reader).
    public func readRegion(level0Origin origin: (x: Int, y: Int), size: (width: Int, height: Int), micronsPerPixel target: Double,
                           allowUpsampling: Bool) throws -> SlideRegion {
        guard let base = micronsPerPixel else {
            throw SlideError(.missingResolution, path, "the slide records no µm/px, so it cannot be read by resolution; give it with --mpp-override (or `mpp_override:` in a flow file), or read by level")
        }
        guard target > 0 && target.isFinite else { throw SlideError(.invalidRequest, path, "µm/px must be positive, got \(target)") }
        try checkRequest(origin: origin, size: size)
        if target < base * (1 - 1e-3) && !allowUpsampling {
            throw SlideError(.invalidRequest, path, String(format: "%.4g µm/px is finer than the slide's level 0 (%.4g µm/px); reading it would upsample. Request ≥ %.4g µm/px, or allow upsampling (`--allow-upsampling`; `allow_upsampling: true` in a flow)", target, base, base))
        }
        let level = bestLevel(forMicronsPerPixel: target, base: base)
        let downsample = levels[level].downsample
        let level0Width = Double(size.width) * target / base, level0Height = Double(size.height) * target / base
        guard max(level0Width, level0Height) <= Double(Self.coordinateLimit) else {
            throw SlideError(.invalidRequest, path, String(format: "%d×%d pixels at %.4g µm/px span %.4g level-0 pixels, far beyond the slide; request a coarser size or a finer µm/px", size.width, size.height, target, max(level0Width, level0Height)))
        }
        // The source window at the chosen level, fractional, and the whole pixels that hold it.
        let sx = Double(origin.x) / downsample, sy = Double(origin.y) / downsample
        let sw = level0Width / downsample, sh = level0Height / downsample
        let left = Int(sx.rounded(.down)), top = Int(sy.rounded(.down))
        let right = Int((sx + sw).rounded(.up)), bottom = Int((sy + sh).rounded(.up))
        let window = try readRegion(level0Origin: (Int((Double(left) * downsample).rounded()), Int((Double(top) * downsample).rounded())),
                                    size: (max(1, right - left), max(1, bottom - top)), level: level)
        let image = AreaResampler.resample(window, x0: sx - Double(left), y0: sy - Double(top), sourceWidth: sw, sourceHeight: sh,
                                           width: size.width, height: size.height)
        return SlideRegion(image: image, level: level, requestedMicronsPerPixel: target,
                           effectiveMicronsPerPixel: level0Width * base / Double(size.width), level0Origin: origin,
                           level0Size: (Int(level0Width.rounded()), Int(level0Height.rounded())))
    }


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
