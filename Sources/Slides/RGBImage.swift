/// An 8-bit RGB image, rows top to bottom, pixels interleaved (R, G, B).
public struct RGBImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(width >= 0 && height >= 0 && pixels.count == width * height * 3,
                     "an RGB image of \(width)×\(height) needs \(width * height * 3) bytes, got \(pixels.count)")
        (self.width, self.height, self.pixels) = (width, height, pixels)
    }

    /// A uniform image (a grey colour, white included, is one memset).
    public init(width: Int, height: Int, filling colour: (UInt8, UInt8, UInt8)) {
        if colour.0 == colour.1 && colour.1 == colour.2 {
            self.init(width: width, height: height, pixels: [UInt8](repeating: colour.0, count: width * height * 3))
            return
        }
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<(width * height) {
            pixels[3 * i] = colour.0
            pixels[3 * i + 1] = colour.1
            pixels[3 * i + 2] = colour.2
        }
        self.init(width: width, height: height, pixels: pixels)
    }

    /// Channel c of pixel (x, y).
    public subscript(x x: Int, y y: Int, channel channel: Int) -> UInt8 {
        pixels[(y * width + x) * 3 + channel]
    }
}
