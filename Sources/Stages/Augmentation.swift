import Flow
import Foundation
import Randomness
import Slides
import Tensors

/// Turns 8-bit tiles into model input: an optional random resized crop, one of the eight
/// flips/90° rotations (histology has no up), colour jitter (brightness, contrast, saturation),
/// then bilinear resampling to `size` and normalisation (v/255 − mean)/std per channel into NCHW
/// float32. Jitter, per image with factors b, c, s drawn from their ranges, on each resampled
/// pixel v (RGB, 0…255) with grey g = 0.299R + 0.587G + 0.114B and m the tile's mean grey:
/// v ← b·v, then v ← g' + s·(v − g') (g' the grey of b·v), then v ← m' + c·(v − m') (m' = b·m).
public struct Augmentation: Sendable {
    /// Per-channel normalisation (ImageNet statistics, as the reference models use).
    public static let mean: [Float] = [0.485, 0.456, 0.406]
    public static let std: [Float] = [0.229, 0.224, 0.225]

    /// Area fraction range of the random resized crop (1…1 turns it off).
    public var cropScale: ClosedRange<Double> = 0.2...1
    public var flipsAndRotations = true
    /// Brightness, contrast and saturation factor ranges per image (1…1 turns each off).
    public var brightness: ClosedRange<Float> = 1...1
    public var contrast: ClosedRange<Float> = 1...1
    public var saturation: ClosedRange<Float> = 1...1

    public init() {}

    /// No randomness: the whole tile, resized, as evaluation sees it.
    public static let evaluation: Augmentation = {
        var a = Augmentation()
        a.cropScale = 1...1
        a.flipsAndRotations = false
        return a
    }()

    /// Writes `tiles` into a (count, 3, size, size) tensor.
    public func batch(_ tiles: [RGBImage], size: Int, using rng: inout RandomGenerator) -> Tensor {
        var out = Tensor(zeros: [tiles.count, 3, size, size])
        out.withUnsafeMutableBufferPointer { dst in
            for (index, tile) in tiles.enumerated() {
                write(tile, size: size, into: UnsafeMutableBufferPointer(rebasing: dst[(index * 3 * size * size)..<((index + 1) * 3 * size * size)]), using: &rng)
            }
        }
        return out
    }

    /// The same, image i drawing from its own generator `generator(i)` (so an image's augmentation
    /// does not depend on which other images share its batch: data-parallel ranks each make a
    /// part of a batch and get the images one process would have made).
    public func batch(_ tiles: [RGBImage], size: Int, generator: (Int) -> RandomGenerator) -> Tensor {
        var out = Tensor(zeros: [tiles.count, 3, size, size])
        out.withUnsafeMutableBufferPointer { dst in
            for (index, tile) in tiles.enumerated() {
                var rng = generator(index)
                write(tile, size: size, into: UnsafeMutableBufferPointer(rebasing: dst[(index * 3 * size * size)..<((index + 1) * 3 * size * size)]), using: &rng)
            }
        }
        return out
    }

    private func write(_ tile: RGBImage, size: Int, into dst: UnsafeMutableBufferPointer<Float>, using rng: inout RandomGenerator) {
        let (w, h) = (Double(tile.width), Double(tile.height))
        // The crop rectangle in source pixels.
        var (cx, cy, cw, ch) = (0.0, 0.0, w, h)
        if cropScale.lowerBound < 1 {
            for _ in 0..<10 {
                let area = w * h * (cropScale.lowerBound + (cropScale.upperBound - cropScale.lowerBound) * rng.uniformDouble())
                let ratio = exp(log(3.0 / 4) + (log(4.0 / 3) - log(3.0 / 4)) * rng.uniformDouble())
                let width = (area * ratio).squareRoot(), height = (area / ratio).squareRoot()
                if width <= w && height <= h {
                    (cw, ch) = (width, height)
                    cx = (w - width) * rng.uniformDouble()
                    cy = (h - height) * rng.uniformDouble()
                    break
                }
            }
        }
        let orientation = flipsAndRotations ? rng.integer(below: 8) : 0
        func draw(_ range: ClosedRange<Float>) -> Float { range.lowerBound < range.upperBound ? rng.uniform(range.lowerBound, range.upperBound) : range.lowerBound }
        let factor = draw(brightness), contrastFactor = draw(contrast), saturationFactor = draw(saturation)
        let jitters = contrastFactor != 1 || saturationFactor != 1
        // The tile's mean grey (contrast pivots on it), brightened like every pixel.
        let meanGrey = contrastFactor == 1 ? 0 : factor * tile.pixels.withUnsafeBufferPointer { p -> Float in
            var sum: Float = 0
            for i in 0..<(tile.width * tile.height) { sum += 0.299 * Float(p[3 * i]) + 0.587 * Float(p[3 * i + 1]) + 0.114 * Float(p[3 * i + 2]) }
            return sum / Float(max(1, tile.width * tile.height))
        }
        let plane = size * size
        let scales = (0..<3).map { (jitters ? 1 : factor) / (255 * Self.std[$0]) }
        let offsets = (0..<3).map { -Self.mean[$0] / Self.std[$0] }
        tile.pixels.withUnsafeBufferPointer { src in
            for v in 0..<size {
                for u in 0..<size {
                    // The dihedral transform: transpose, then flip x and/or y.
                    var (a, b) = (u, v)
                    if orientation & 4 != 0 { swap(&a, &b) }
                    if orientation & 1 != 0 { a = size - 1 - a }
                    if orientation & 2 != 0 { b = size - 1 - b }
                    let sx = cx + (Double(a) + 0.5) * cw / Double(size) - 0.5
                    let sy = cy + (Double(b) + 0.5) * ch / Double(size) - 0.5
                    let x0 = max(0, min(tile.width - 1, Int(sx.rounded(.down)))), y0 = max(0, min(tile.height - 1, Int(sy.rounded(.down))))
                    let x1 = min(tile.width - 1, x0 + 1), y1 = min(tile.height - 1, y0 + 1)
                    let fx = Float(max(0, min(1, sx - Double(x0)))), fy = Float(max(0, min(1, sy - Double(y0))))
                    var rgb: (Float, Float, Float) = (0, 0, 0)
                    for c in 0..<3 {
                        let p00 = Float(src[(y0 * tile.width + x0) * 3 + c]), p10 = Float(src[(y0 * tile.width + x1) * 3 + c])
                        let p01 = Float(src[(y1 * tile.width + x0) * 3 + c]), p11 = Float(src[(y1 * tile.width + x1) * 3 + c])
                        let top = p00 + fx * (p10 - p00), bottom = p01 + fx * (p11 - p01)
                        let value = top + fy * (bottom - top)
                        if c == 0 { rgb.0 = value } else if c == 1 { rgb.1 = value } else { rgb.2 = value }
                    }
                    if jitters {
                        rgb = (rgb.0 * factor, rgb.1 * factor, rgb.2 * factor)
                        let grey = 0.299 * rgb.0 + 0.587 * rgb.1 + 0.114 * rgb.2
                        rgb = (grey + saturationFactor * (rgb.0 - grey), grey + saturationFactor * (rgb.1 - grey), grey + saturationFactor * (rgb.2 - grey))
                        rgb = (meanGrey + contrastFactor * (rgb.0 - meanGrey), meanGrey + contrastFactor * (rgb.1 - meanGrey),
                               meanGrey + contrastFactor * (rgb.2 - meanGrey))
                        rgb = (min(255, max(0, rgb.0)), min(255, max(0, rgb.1)), min(255, max(0, rgb.2)))
                    }
                    let at = v * size + u
                    dst[at] = rgb.0 * scales[0] + offsets[0]
                    dst[plane + at] = rgb.1 * scales[1] + offsets[1]
                    dst[2 * plane + at] = rgb.2 * scales[2] + offsets[2]
                }
            }
        }
    }

    /// The inverse of the normalisation, for pictures: NCHW image `index` back to 8-bit RGB.
    public static func image(_ batch: Tensor, index: Int) -> RGBImage {
        let size = batch.shape[2], plane = size * size
        var pixels = [UInt8](repeating: 0, count: plane * 3)
        batch.withUnsafeBufferPointer { src in
            for i in 0..<plane {
                for c in 0..<3 {
                    let v = (src[(index * 3 + c) * plane + i] * std[c] + mean[c]) * 255
                    pixels[i * 3 + c] = UInt8(max(0, min(255, v.rounded())))
                }
            }
        }
        return RGBImage(width: size, height: size, pixels: pixels)
    }
}

/// The augmentation parameters of the training stages.
protocol AugmentationParameters {
    /// Smallest area fraction of the random resized crop.
    var cropScaleMin: Double { get }
    var flips: Bool { get }
    /// Jitters, each ± its fraction.
    var brightness: Double { get }
    var contrast: Double { get }
    var saturation: Double { get }
}

extension Augmentation {
    /// The augmentation a training stage's parameters describe.
    init(_ p: some AugmentationParameters) {
        self.init()
        cropScale = p.cropScaleMin...1
        flipsAndRotations = p.flips
        func range(_ jitter: Double) -> ClosedRange<Float> { Float(1 - jitter)...Float(1 + jitter) }
        brightness = range(p.brightness)
        contrast = range(p.contrast)
        saturation = range(p.saturation)
    }
}
