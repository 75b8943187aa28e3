import Foundation
import Slides

/// A synthetic H&E-like slide with a known tissue layout, written as a real pyramidal TIFF.
struct SyntheticSlide {
    let width: Int
    let height: Int
    /// 1 where tissue was painted.
    var truth: [UInt8]
    var image: RGBImage

    /// Glass (near-white with noise) everywhere; tissue (pink and purple speckle) where `isTissue`.
    init(width: Int, height: Int, seed: UInt64 = 1, isTissue: (Int, Int) -> Bool) {
        self.width = width
        self.height = height
        var state = seed
        func next() -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % 1000)
        }
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        var truth = [UInt8](repeating: 0, count: width * height)
        for y in 0..<height {
            for x in 0..<width {
                let o = (y * width + x) * 3
                let noise = next() % 7 - 3
                if isTissue(x, y) {
                    truth[y * width + x] = 1
                    let purple = next() % 3 == 0  // nuclei among eosin-pink stroma
                    let (r, g, b) = purple ? (110, 60, 160) : (230, 140, 190)
                    pixels[o] = UInt8(r + noise * 4); pixels[o + 1] = UInt8(g + noise * 4); pixels[o + 2] = UInt8(b + noise * 4)
                } else {
                    pixels[o] = UInt8(242 + noise); pixels[o + 1] = UInt8(241 + noise); pixels[o + 2] = UInt8(243 + noise)
                }
            }
        }
        self.truth = truth
        self.image = RGBImage(width: width, height: height, pixels: pixels)
    }

    var truthFraction: Double { Double(truth.reduce(0) { $0 + Int($1) }) / Double(width * height) }

    mutating func paint(_ colour: (UInt8, UInt8, UInt8), where inside: (Int, Int) -> Bool) {
        for y in 0..<height {
            for x in 0..<width where inside(x, y) {
                let o = (y * width + x) * 3
                image.pixels[o] = colour.0; image.pixels[o + 1] = colour.1; image.pixels[o + 2] = colour.2
            }
        }
    }

    func write(micronsPerPixel: Double) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("synthetic-\(UUID()).tif")
        try PyramidWriter.write(image, to: url, micronsPerPixel: micronsPerPixel, compression: .jpeg(quality: 90))
        return url
    }
}
