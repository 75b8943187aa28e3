import Foundation

/// Per-class probabilities laid over a slide: a `width` × `height` raster from the slide's top-left
/// corner, each pixel `level0PixelsPerPixel` level-0 pixels wide (the tile grid's step divided by
/// `subdivision`), so at `micronsPerPixel` it covers the slide at its physical size.
///
/// A pixel holds the mean probability of the tiles that contain its centre: with tiles that do not
/// overlap that is the one tile's value (what the tile table says), with a stride smaller than the
/// tile each pixel averages every tile over it, a smoother map. NaN where no tile lies.
public struct ProbabilityMap: Sendable {
    public let width: Int
    public let height: Int
    public let classes: [String]
    public let level0PixelsPerPixel: Double
    /// µm per map pixel (nil when the slide has no µm/px).
    public let micronsPerPixel: Double?
    private var sums: [[Double]]
    private var counts: [Int32]

    /// A map over a slide of level-0 `slideWidth` × `slideHeight`: pixels of `gridStep / subdivision`
    /// level-0 pixels.
    public init(slideWidth: Int, slideHeight: Int, gridStep: Double, subdivision: Int, slideMicronsPerPixel: Double?, classes: [String]) {
        let step = gridStep / Double(max(1, subdivision))
        let width = max(1, Int((Double(slideWidth) / step).rounded(.up)))
        let height = max(1, Int((Double(slideHeight) / step).rounded(.up)))
        (self.level0PixelsPerPixel, self.width, self.height) = (step, width, height)
        micronsPerPixel = slideMicronsPerPixel.map { $0 * step }
        self.classes = classes
        sums = classes.map { _ in [Double](repeating: 0, count: width * height) }
        counts = [Int32](repeating: 0, count: width * height)
    }

    /// The subdivision that makes a map of about `longSide` pixels on its longer side from a grid of
    /// `columns` × `rows` cells (enough for a viewer to zoom, and a pyramid of several levels), at
    /// most 64 pixels per cell and at least 1.
    public static func subdivision(columns: Int, rows: Int, longSide: Int = 1024) -> Int {
        min(64, max(1, Int((Double(longSide) / Double(max(1, columns, rows))).rounded(.up))))
    }

    /// The map pixels whose centres lie in [start, start + extent) along one axis.
    private func covered(start: Double, extent: Double, limit: Int) -> Range<Int> {
        let first = Int((start / level0PixelsPerPixel - 0.5).rounded(.up))
        let end = Int(((start + extent) / level0PixelsPerPixel - 0.5).rounded(.up))
        return max(0, first)..<min(limit, max(first, end))
    }

    /// Adds one tile (level-0 corner and side) with its class probabilities.
    public mutating func add(level0X: Double, level0Y: Double, extent: Double, probabilities: [Double]) {
        precondition(probabilities.count == classes.count, "one probability per class")
        for y in covered(start: level0Y, extent: extent, limit: height) {
            for x in covered(start: level0X, extent: extent, limit: width) {
                let i = y * width + x
                counts[i] += 1
                for k in classes.indices { sums[k][i] += probabilities[k] }
            }
        }
    }

    /// Class `k`'s plane: the mean probability per pixel, NaN where no tile lies.
    public func plane(_ k: Int) -> [Float] {
        zip(sums[k], counts).map { $1 == 0 ? .nan : Float($0 / Double($1)) }
    }

    /// The value of class `k` at a level-0 point (NaN outside the tiles).
    public func value(_ k: Int, level0X x: Double, level0Y y: Double) -> Float {
        let column = Int(x / level0PixelsPerPixel), row = Int(y / level0PixelsPerPixel)
        guard x >= 0, y >= 0, column < width, row < height else { return .nan }
        let i = row * width + column
        return counts[i] == 0 ? .nan : Float(sums[k][i] / Double(counts[i]))
    }
}
