import Foundation
import Slides

/// One position of a tile grid, in level-0 coordinates.
public struct TilePosition: Sendable, Codable, Equatable {
    public let column: Int
    public let row: Int
    /// Top-left corner and extent of the tile at the grid's µm/px, in level-0 pixels.
    public let level0X: Double
    public let level0Y: Double
    public let level0Width: Double
    public let level0Height: Double
    public let tissueFraction: Double

    public init(column: Int, row: Int, level0X: Double, level0Y: Double, level0Width: Double, level0Height: Double,
                tissueFraction: Double) {
        (self.column, self.row, self.level0X, self.level0Y) = (column, row, level0X, level0Y)
        (self.level0Width, self.level0Height, self.tissueFraction) = (level0Width, level0Height, tissueFraction)
    }

    public var centre: (x: Double, y: Double) { (level0X + level0Width / 2, level0Y + level0Height / 2) }
}

/// The whole tile grid of one slide: `columns` × `rows` cells, one every `step` level-0 pixels from
/// the slide's top-left corner; `micronsPerPixel` is the slide's level 0. An image with one pixel
/// per cell at `step · micronsPerPixel` µm/px lies exactly over the slide (a heatmap).
public struct GridFrame: Sendable, Equatable {
    public let columns: Int
    public let rows: Int
    public let step: Double
    public let micronsPerPixel: Double

    public init(columns: Int, rows: Int, step: Double, micronsPerPixel: Double) {
        (self.columns, self.rows, self.step, self.micronsPerPixel) = (columns, rows, step, micronsPerPixel)
    }
}

/// A grid of square tiles at a target µm/px: `size` pixels per tile, a new tile every `stride`
/// pixels (stride < size overlaps), whole tiles inside the slide only, kept when the tissue mask
/// covers at least `minimumTissue` of the tile.
public struct TileGrid: Sendable {
    public let micronsPerPixel: Double
    public let size: Int
    public let stride: Int
    public let minimumTissue: Double

    public init(micronsPerPixel: Double, size: Int, stride: Int? = nil, minimumTissue: Double = 0.5) {
        self.micronsPerPixel = micronsPerPixel
        self.size = size
        self.stride = stride ?? size
        self.minimumTissue = minimumTissue
    }

    /// Every cell of the grid on a slide of level-0 `slideWidth` × `slideHeight` at `slideMicronsPerPixel`
    /// (kept or not): the cells `positions` numbers its columns and rows in.
    public func frame(slideWidth: Int, slideHeight: Int, slideMicronsPerPixel base: Double) -> GridFrame {
        let scale = micronsPerPixel / base
        let extent = Double(size) * scale, step = Double(stride) * scale
        func cells(_ length: Int) -> Int { Double(length) + 1e-6 < extent ? 0 : Int(((Double(length) + 1e-6 - extent) / step).rounded(.down)) + 1 }
        return GridFrame(columns: cells(slideWidth), rows: cells(slideHeight), step: step, micronsPerPixel: base)
    }

    /// The kept positions, row by row.
    /// - Parameter slideMicronsPerPixel: the slide's level-0 µm/px (nil: fail with how to fix it).
    public func positions(slideWidth: Int, slideHeight: Int, slideMicronsPerPixel: Double?, mask: TissueMask?,
                          path: String) throws -> [TilePosition] {
        guard size > 0, stride > 0 else { throw SlideError(.invalidRequest, path, "tile size and stride must be positive") }
        guard let base = slideMicronsPerPixel else {
            throw SlideError(.missingResolution, path, "the slide records no µm/px, so a grid at \(micronsPerPixel) µm/px cannot be placed; set `mpp_override:` in the flow's source (or --mpp-override)")
        }
        let scale = micronsPerPixel / base  // level-0 pixels per tile pixel
        let extent = Double(size) * scale, step = Double(stride) * scale
        var result: [TilePosition] = []
        var row = 0
        var y = 0.0
        while y + extent <= Double(slideHeight) + 1e-6 {
            var column = 0
            var x = 0.0
            while x + extent <= Double(slideWidth) + 1e-6 {
                let fraction = mask?.fraction(level0Origin: (x, y), size: (extent, extent)) ?? 1
                if fraction >= minimumTissue {
                    result.append(TilePosition(column: column, row: row, level0X: x, level0Y: y, level0Width: extent,
                                               level0Height: extent, tissueFraction: fraction))
                }
                column += 1
                x += step
            }
            row += 1
            y += step
        }
        return result
    }
}
