import Flow
import Foundation
import Slides
import TileCache
import Tiling

/// `decode`: ROI image files into tiles.
struct DecodeStage: Stage {
    let size: Int
    let micronsPerPixel: Double

    func process(_ input: ImageItem, _ context: StageContext<Tile>) throws {
        var image = try ImageFile.read(input.path)
        if size > 0 {
            guard image.width >= size && image.height >= size else {
                throw StageError(.invalidInput, "\(input.path)", "the image is \(image.width)×\(image.height), smaller than `size: \(size)`; lower `size` or set it to 0")
            }
            image = Self.centreCrop(image, size)
        }
        var tile = Tile(source: input.path, column: 0, row: 0, scaleIndex: 0, level0X: 0, level0Y: 0,
                        requestedMicronsPerPixel: micronsPerPixel, effectiveMicronsPerPixel: micronsPerPixel, tissueFraction: 1,
                        label: input.label, image: image)
        tile.split = input.split
        tile.sourceIdentity = try Fingerprint.source(path: input.path)
        try context.emit(tile)
    }

    static func centreCrop(_ image: RGBImage, _ size: Int) -> RGBImage {
        guard image.width != size || image.height != size else { return image }
        let left = (image.width - size) / 2, top = (image.height - size) / 2
        var pixels = [UInt8](repeating: 0, count: size * size * 3)
        for y in 0..<size {
            let from = ((top + y) * image.width + left) * 3
            pixels.replaceSubrange(y * size * 3..<(y + 1) * size * 3, with: image.pixels[from..<from + size * 3])
        }
        return RGBImage(width: size, height: size, pixels: pixels)
    }
}
