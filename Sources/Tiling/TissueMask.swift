import Foundation
import Slides

/// A binary tissue mask of a whole slide at a coarse resolution.
///
/// Mask pixel (i, j) covers level-0 pixels [i·d, (i+1)·d) × [j·d, (j+1)·d) with d = `downsample`.
/// Tissue fractions of any level-0 rectangle are exact area integrals of the mask (the integral
/// image, bilinearly interpolated, is the exact integral of a piecewise-constant image).
public struct TissueMask: Sendable {
    public let width: Int
    public let height: Int
    /// Level-0 pixels per mask pixel.
    public let downsample: Double
    /// µm per mask pixel, when the slide's µm/px is known.
    public let micronsPerPixel: Double?
    /// 1 = tissue, 0 = background; rows top to bottom.
    public let pixels: [UInt8]
    private let integral: [Double]  // (width+1)·(height+1)

    public init(width: Int, height: Int, downsample: Double, micronsPerPixel: Double?, pixels: [UInt8]) {
        precondition(pixels.count == width * height)
        (self.width, self.height, self.downsample, self.micronsPerPixel, self.pixels) = (width, height, downsample, micronsPerPixel, pixels)
        var sums = [Double](repeating: 0, count: (width + 1) * (height + 1))
        for y in 0..<height {
            var row = 0.0
            for x in 0..<width {
                row += Double(pixels[y * width + x])
                sums[(y + 1) * (width + 1) + x + 1] = sums[y * (width + 1) + x + 1] + row
            }
        }
        integral = sums
    }

    /// The fraction of the whole mask that is tissue.
    public var tissueFraction: Double {
        width * height == 0 ? 0 : integral[(width + 1) * (height + 1) - 1] / Double(width * height)
    }

    /// The tissue fraction of a level-0 rectangle (0 outside the slide).
    public func fraction(level0Origin origin: (x: Double, y: Double), size: (width: Double, height: Double)) -> Double {
        guard size.width > 0, size.height > 0 else { return 0 }
        let x0 = origin.x / downsample, y0 = origin.y / downsample
        let x1 = (origin.x + size.width) / downsample, y1 = (origin.y + size.height) / downsample
        let area = (x1 - x0) * (y1 - y0)
        let inside = integralAt(x1, y1) - integralAt(x0, y1) - integralAt(x1, y0) + integralAt(x0, y0)
        return min(1, max(0, inside / area))
    }

    /// ∫∫ of the mask over [0, x] × [0, y] in mask pixel units.
    private func integralAt(_ x: Double, _ y: Double) -> Double {
        let x = min(max(x, 0), Double(width)), y = min(max(y, 0), Double(height))
        let i = min(Int(x), max(width - 1, 0)), j = min(Int(y), max(height - 1, 0))
        let fx = x - Double(i), fy = y - Double(j)
        let stride = width + 1
        func s(_ a: Int, _ b: Int) -> Double { integral[b * stride + a] }
        guard width > 0, height > 0 else { return 0 }
        let top = s(i, j) + fx * (s(i + 1, j) - s(i, j))
        let bottom = s(i, j + 1) + fx * (s(i + 1, j + 1) - s(i, j + 1))
        return top + fy * (bottom - top)
    }

    /// The mask as an image: tissue white, background black.
    public var image: RGBImage {
        var rgb = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<(width * height) where pixels[i] != 0 { rgb[3 * i] = 255; rgb[3 * i + 1] = 255; rgb[3 * i + 2] = 255 }
        return RGBImage(width: width, height: height, pixels: rgb)
    }

    /// Writes the mask as a PNG.
    public func writePNG(to url: URL) throws { try PNGWriter.write(image, to: url) }

    /// Writes the mask as a tiled pyramidal TIFF whose µm/px makes it line up with the slide.
    public func writePyramid(to url: URL) throws {
        try PyramidWriter.write(image, to: url, micronsPerPixel: micronsPerPixel, compression: .deflate)
    }
}
