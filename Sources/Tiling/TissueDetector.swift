import Foundation
import Slides

/// Finds tissue on a slide at a coarse resolution.
///
/// Steps: read the slide at ≈ `micronsPerPixel` (the best level, then box-averaged by a whole
/// factor); saturation S = (max − min) / max of each pixel; Otsu's threshold on S, never below
/// `minimumSaturation`; optionally drop pen marks (strongly saturated green or blue, and
/// near-black); close gaps (dilate then erode, `closingRadius`); remove regions smaller than
/// `minimumRegionArea`; fill holes.
public struct TissueDetector: Sendable {
    public struct Parameters: Codable, Sendable, Equatable {
        /// µm per mask pixel (8–16 suits the task).
        public var micronsPerPixel = 8.0
        /// Otsu's threshold on saturation (0…1) never goes below this: a blank slide stays blank.
        public var minimumSaturation = 0.07
        /// Regions smaller than this many µm² are dropped (debris, dust).
        public var minimumRegionArea = 20_000.0
        /// Radius in mask pixels of the closing that joins nearby fragments.
        public var closingRadius = 1
        public var fillHoles = true
        public var suppressPen = true
        /// Used for slides without µm/px (the mask's scale is then a guess the result states).
        public var assumedSlideMicronsPerPixel = 0.25
        public init() {}
    }

    public var parameters: Parameters
    public init(parameters: Parameters = Parameters()) { self.parameters = parameters }

    /// The slide's tissue mask.
    public func detect(_ slide: SlideReader) throws -> TissueMask {
        let base = slide.micronsPerPixel ?? parameters.assumedSlideMicronsPerPixel
        let wanted = max(1, parameters.micronsPerPixel / base)  // level-0 pixels per mask pixel
        var level = 0
        for (index, candidate) in slide.levels.enumerated() where candidate.downsample <= wanted * (1 + 1e-6) {
            if candidate.downsample > slide.levels[level].downsample { level = index }
        }
        let chosen = slide.levels[level]
        // Clamped before conversion: odd parameters must not trap (a mask pixel of 2²⁰ level-0
        // pixels is one pixel for any slide).
        let factor = max(1, Int(min(wanted / chosen.downsample, Double(1 << 20)).rounded()))
        let image = try slide.readRegion(level0Origin: (0, 0), size: (chosen.width, chosen.height), level: level)
        let reduced = Self.boxReduce(image, factor)
        let downsample = chosen.downsample * Double(factor)
        let pixels = classify(reduced, micronsPerMaskPixel: base * downsample)
        return TissueMask(width: reduced.width, height: reduced.height, downsample: downsample,
                          micronsPerPixel: slide.micronsPerPixel.map { $0 * downsample }, pixels: pixels)
    }

    /// The tissue mask of an image already at mask resolution.
    public func classify(_ image: RGBImage, micronsPerMaskPixel: Double) -> [UInt8] {
        let n = image.width * image.height
        var saturation = [UInt8](repeating: 0, count: n)
        var pen = [Bool](repeating: false, count: n)
        var histogram = [Int](repeating: 0, count: 256)
        for i in 0..<n {
            let r = Int(image.pixels[3 * i]), g = Int(image.pixels[3 * i + 1]), b = Int(image.pixels[3 * i + 2])
            let high = max(r, g, b), low = min(r, g, b)
            let s = high == 0 ? 0 : (255 * (high - low)) / high
            saturation[i] = UInt8(s)
            histogram[s] += 1
            if parameters.suppressPen { pen[i] = Self.isPen(r, g, b) }
        }
        let threshold = max(Self.otsu(histogram), Int((parameters.minimumSaturation * 255).rounded()))
        var mask = [UInt8](repeating: 0, count: n)
        for i in 0..<n where Int(saturation[i]) > threshold && !pen[i] { mask[i] = 1 }
        let w = image.width, h = image.height
        if parameters.closingRadius > 0 {
            mask = Morphology.erode(Morphology.dilate(mask, w, h, parameters.closingRadius), w, h, parameters.closingRadius)
            for i in 0..<n where pen[i] { mask[i] = 0 }
        }
        let areaInPixels = parameters.minimumRegionArea / (micronsPerMaskPixel * micronsPerMaskPixel)
        let minimumPixels = areaInPixels.isFinite ? Int(min(max(areaInPixels, 0), Double(n + 1)).rounded(.up)) : n + 1
        mask = Morphology.removeSmallRegions(mask, w, h, minimumPixels: minimumPixels)
        if parameters.fillHoles { mask = Morphology.fillHoles(mask, w, h) }
        return mask
    }

    /// Pen ink, not stain: green (green above red), strongly saturated blue with little red, or
    /// near-black. H&E is pink to purple: red at least as strong as green, blue never far above red.
    static func isPen(_ r: Int, _ g: Int, _ b: Int) -> Bool {
        if max(r, g, b) < 50 { return true }
        if g > r + 30 && g >= b - 10 { return true }
        if b > r + 70 && b > g + 40 && r < 110 { return true }
        return false
    }

    /// Otsu's threshold: the level maximising the between-class variance of the histogram.
    static func otsu(_ histogram: [Int]) -> Int {
        let total = Double(histogram.reduce(0, +))
        guard total > 0 else { return 0 }
        let sumAll = histogram.enumerated().reduce(0.0) { $0 + Double($1.offset * $1.element) }
        var weightBelow = 0.0, sumBelow = 0.0, best = 0.0, threshold = 0
        for t in 0..<256 {
            weightBelow += Double(histogram[t])
            guard weightBelow > 0 else { continue }
            let weightAbove = total - weightBelow
            guard weightAbove > 0 else { break }
            sumBelow += Double(t * histogram[t])
            let meanBelow = sumBelow / weightBelow, meanAbove = (sumAll - sumBelow) / weightAbove
            let between = weightBelow * weightAbove * (meanBelow - meanAbove) * (meanBelow - meanAbove)
            if between > best { (best, threshold) = (between, t) }
        }
        return threshold
    }

    /// Averages `factor`×`factor` blocks (partial blocks at the edges average what they have).
    static func boxReduce(_ image: RGBImage, _ factor: Int) -> RGBImage {
        guard factor > 1 else { return image }
        let w = (image.width + factor - 1) / factor, h = (image.height + factor - 1) / factor
        var sums = [Int](repeating: 0, count: w * h * 3), counts = [Int](repeating: 0, count: w * h)
        image.pixels.withUnsafeBufferPointer { p in
            for y in 0..<image.height {
                let row = (y / factor) * w
                for x in 0..<image.width {
                    let o = row + x / factor, s = (y * image.width + x) * 3
                    sums[3 * o] += Int(p[s]); sums[3 * o + 1] += Int(p[s + 1]); sums[3 * o + 2] += Int(p[s + 2])
                    counts[o] += 1
                }
            }
        }
        var out = [UInt8](repeating: 0, count: w * h * 3)
        for i in 0..<(w * h) { for c in 0..<3 { out[3 * i + c] = UInt8((sums[3 * i + c] + counts[i] / 2) / counts[i]) } }
        return RGBImage(width: w, height: h, pixels: out)
    }
}
