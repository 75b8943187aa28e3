import Foundation
import Plots
import Slides

/// Pictures of a probability map: the colour-mapped map itself (a pyramid that lies over the slide)
/// and the slide's thumbnail with the map blended in and a legend.
public enum HeatmapPictures {
    /// Probability 0…1 → blue, through yellowish white, to red.
    public static func colour(_ probability: Float) -> (UInt8, UInt8, UInt8) {
        let t = max(0, min(1, probability))
        let r = t < 0.5 ? 2 * t : 1, b = t < 0.5 ? 1 : 2 * (1 - t), g = 1 - abs(2 * t - 1) * 0.8
        return (UInt8(r * 255), UInt8(g * 255), UInt8(b * 255))
    }

    /// Where no tile lies.
    public static let noData: (UInt8, UInt8, UInt8) = (230, 230, 230)

    /// Class `k` of the map in colour, one pixel per map pixel.
    public static func colourMap(_ map: ProbabilityMap, classIndex k: Int) -> RGBImage {
        var pixels = [UInt8](repeating: 0, count: map.width * map.height * 3)
        for (i, v) in map.plane(k).enumerated() {
            let (r, g, b) = v.isNaN ? noData : colour(v)
            pixels[3 * i] = r; pixels[3 * i + 1] = g; pixels[3 * i + 2] = b
        }
        return RGBImage(width: map.width, height: map.height, pixels: pixels)
    }

    /// The slide's thumbnail (`longSide` pixels on its longer side) with class `k`'s map blended in at `opacity` where tiles
    /// lie, above a legend: the colour scale from 0 to 1 and the class's name.
    public static func overlay(_ slide: SlideReader, map: ProbabilityMap, classIndex k: Int, longSide: Int = 1024,
                               opacity: Float = 0.55) throws -> RGBImage {
        let base = slide.levels[0]
        let scale = Double(max(base.width, base.height)) / Double(longSide)
        let width = max(1, Int((Double(base.width) / scale).rounded())), height = max(1, Int((Double(base.height) / scale).rounded()))
        let thumbnail = try Self.thumbnail(slide, width: width, height: height)
        let canvasWidth = max(width, 360)
        var pixels = [UInt8](repeating: 255, count: canvasWidth * (height + legendHeight) * 3)
        let plane = map.plane(k)
        for y in 0..<height {
            for x in 0..<width {
                let source = (y * width + x) * 3, target = (y * canvasWidth + x) * 3
                // The map pixel under this thumbnail pixel's centre, in level-0 coordinates.
                let column = Int((Double(x) + 0.5) * scale / map.level0PixelsPerPixel)
                let row = Int((Double(y) + 0.5) * scale / map.level0PixelsPerPixel)
                let value = column < map.width && row < map.height ? plane[row * map.width + column] : .nan
                if value.isNaN {
                    for c in 0..<3 { pixels[target + c] = thumbnail.pixels[source + c] }
                } else {
                    let tint = colour(value)
                    let tints: [UInt8] = [tint.0, tint.1, tint.2]
                    for c in 0..<3 {
                        let under = Float(thumbnail.pixels[source + c]), over = Float(tints[c])
                        pixels[target + c] = UInt8((1 - opacity) * under + opacity * over + 0.5)
                    }
                }
            }
        }
        drawLegend(into: &pixels, width: canvasWidth, top: height, className: map.classes[k])
        return RGBImage(width: canvasWidth, height: height + legendHeight, pixels: pixels)
    }

    /// The whole slide at `width` × `height`, area-averaged from the coarsest level at least that
    /// large, read in bands of rows of about `pixelsPerRead` source pixels, so that a slide without
    /// a small level never needs one huge read.
    public static func thumbnail(_ slide: SlideReader, width: Int, height: Int, pixelsPerRead: Int = 1 << 24) throws -> RGBImage {
        var level = 0
        for (index, candidate) in slide.levels.enumerated() where candidate.width >= width && candidate.height >= height {
            if candidate.downsample > slide.levels[level].downsample { level = index }
        }
        let chosen = slide.levels[level]
        let scaleX = Double(chosen.width) / Double(width), scaleY = Double(chosen.height) / Double(height)
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        let band = max(1, Int(Double(pixelsPerRead) / (Double(chosen.width) * scaleY)))  // output rows per read
        for first in stride(from: 0, to: height, by: band) {
            let last = min(height, first + band)
            let top = Double(first) * scaleY, bottom = Double(last) * scaleY
            let rowFrom = Int(top.rounded(.down)), rowTo = min(chosen.height, Int(bottom.rounded(.up)))
            let strip = try slide.readRegion(level0Origin: (0, Int((Double(rowFrom) * chosen.downsample).rounded())),
                                             size: (chosen.width, max(1, rowTo - rowFrom)), level: level)
            let rows = AreaResampler.resample(strip, x0: 0, y0: top - Double(rowFrom), sourceWidth: Double(width) * scaleX,
                                              sourceHeight: bottom - top, width: width, height: last - first)
            pixels.replaceSubrange((first * width * 3)..<(last * width * 3), with: rows.pixels)
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    /// Pixels of the legend band under the thumbnail.
    public static let legendHeight = 52

    /// "p(class)", then a 200-px colour bar with 0, 0.5 and 1 beneath (text at twice the font size).
    static func drawLegend(into pixels: inout [UInt8], width: Int, top: Int, className: String) {
        let total = pixels.count / 3 / width
        let label = "p(\(className))"
        let black: (UInt8, UInt8, UInt8) = (20, 20, 20)
        BitmapFont.draw(label, x: 10, y: top + 9, scale: 2, colour: black, into: &pixels, width: width, height: total)
        let barLeft = 26 + BitmapFont.width(of: label, scale: 2), barWidth = 200, barTop = top + 8
        guard barLeft + barWidth + 12 <= width else { return }
        for x in 0..<barWidth {
            let (r, g, b) = colour(Float(x) / Float(barWidth - 1))
            for y in barTop..<(barTop + 16) {
                let o = (y * width + barLeft + x) * 3
                pixels[o] = r; pixels[o + 1] = g; pixels[o + 2] = b
            }
        }
        for (text, at) in [("0", 0.0), ("0.5", 0.5), ("1", 1.0)] {
            let centre = barLeft + Int(at * Double(barWidth - 1))
            BitmapFont.draw(text, x: centre - BitmapFont.width(of: text, scale: 2) / 2, y: barTop + 22, scale: 2, colour: black, into: &pixels, width: width, height: total)
        }
    }
}
