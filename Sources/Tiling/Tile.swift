import Foundation
import Slides
import TileCache

/// One crop of a slide or ROI image, the unit that flows between stages and into the cache.
public struct Tile: Sendable, CustomStringConvertible {
    /// The slide or image file.
    public let source: String
    /// Grid position (column, row) and which of the position's scales this crop is.
    public let column: Int
    public let row: Int
    public let scaleIndex: Int
    /// Level-0 top-left of the crop (its pixels cover `size · effective / slide µm/px` level-0 pixels).
    public let level0X: Int
    public let level0Y: Int
    public let requestedMicronsPerPixel: Double
    public let effectiveMicronsPerPixel: Double
    public let tissueFraction: Double
    /// A class or slide label, when the source gives one.
    public var label: String?
    /// train / validation / test, when the dataset assigns one.
    public var split: String?
    /// The patient of the tile's slide, and its survival (follow-up time, event observed), from
    /// the slides' labels CSV.
    public var patient: String?
    public var time: Double?
    public var event: Bool?
    public var image: RGBImage
    /// Cache identity of the source file (set by flows; 0 when unknown).
    public var sourceIdentity: UInt64 = 0
    /// True for a tile known to be in the flow's cache: its pixels were not read (the image is
    /// empty) and the cache stage loads them.
    public var awaitingCache = false
    /// Where the tile's pixels are stored, once a cache stage has written or found them: the
    /// stages that train stream pixels from there instead of holding them.
    public var cacheEntry: CacheEntry?
    /// The slide's whole tile grid, for tiles of a slide grid (`column`, `row` are its cells).
    public var grid: GridFrame?

    public init(source: String, column: Int, row: Int, scaleIndex: Int, level0X: Int, level0Y: Int,
                requestedMicronsPerPixel: Double, effectiveMicronsPerPixel: Double, tissueFraction: Double,
                label: String? = nil, image: RGBImage) {
        self.source = source
        self.column = column
        self.row = row
        self.scaleIndex = scaleIndex
        self.level0X = level0X
        self.level0Y = level0Y
        self.requestedMicronsPerPixel = requestedMicronsPerPixel
        self.effectiveMicronsPerPixel = effectiveMicronsPerPixel
        self.tissueFraction = tissueFraction
        self.label = label
        self.image = image
    }

    public var description: String {
        "\((source as NSString).lastPathComponent) tile (\(column), \(row)) at level-0 (\(level0X), \(level0Y)), "
            + String(format: "%.3g µm/px", requestedMicronsPerPixel)
    }
}

/// Crops of the same pixel size centred on the same point at several µm/px, each read from the
/// nearest finer level and resampled by area averaging. A scale finer than the slide's level 0 is
/// an error unless upsampling is allowed.
public struct MultiScaleCropper: Sendable {
    public let scales: [Double]
    public let size: Int
    public let allowUpsampling: Bool

    public init(scales: [Double], size: Int, allowUpsampling: Bool = false) {
        self.scales = scales
        self.size = size
        self.allowUpsampling = allowUpsampling
    }

    /// Checks every scale against the slide before any tile is read.
    public func validate(_ slide: SlideReader) throws {
        guard let base = slide.micronsPerPixel else {
            throw SlideError(.missingResolution, slide.path, "the slide records no µm/px, so crops at \(scales) µm/px cannot be read; set `mpp_override:` in the flow's source (or --mpp-override)")
        }
        for scale in scales where scale < base * (1 - 1e-3) && !allowUpsampling {
            throw SlideError(.invalidRequest, slide.path, String(format: "the scale %.4g µm/px is finer than the slide's level 0 (%.4g µm/px): it would be an upsampled fake. Use scales ≥ %.4g or set `allow_upsampling: true`", scale, base, base))
        }
    }

    /// One tile per scale, centred on `position`'s centre.
    public func crops(_ slide: SlideReader, at position: TilePosition, label: String? = nil) throws -> [Tile] {
        guard let base = slide.micronsPerPixel else { try validate(slide); return [] }
        let centre = position.centre
        return try scales.enumerated().map { index, scale in
            let extent = Double(size) * scale / base
            let origin = (x: Int((centre.x - extent / 2).rounded()), y: Int((centre.y - extent / 2).rounded()))
            let region = try slide.readRegion(level0Origin: origin, size: (size, size), micronsPerPixel: scale, allowUpsampling: allowUpsampling)
            return Tile(source: slide.path, column: position.column, row: position.row, scaleIndex: index,
                        level0X: origin.x, level0Y: origin.y, requestedMicronsPerPixel: scale,
                        effectiveMicronsPerPixel: region.effectiveMicronsPerPixel, tissueFraction: position.tissueFraction,
                        label: label, image: region.image)
        }
    }
}
