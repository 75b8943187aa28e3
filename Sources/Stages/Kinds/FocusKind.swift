import Flow
import Slides
import Tiling

/// `focus`: drops out-of-focus tiles. Scanners leave blurred regions (tissue folds, focus misses);
/// a blurred tile teaches a model little and scores unreliably.
enum FocusKind: StageKind {
    static let name = "focus"
    static let doc = "Drops out-of-focus tiles: the variance of the Laplacian of a tile's grey values (its sharpness) must reach `min_sharpness`. Counts `<name>.kept` and `<name>.blurred`; tune the threshold on a few tiles of your scanner."
    static let parameters = [
        ParameterSpec("min_sharpness", .number(0...100_000), default: "20", "least variance of the 4-neighbour Laplacian of grey values (0–255) a kept tile has"),
    ]

    struct Parameters: Decodable {
        var minSharpness: Double
    }

    static func make(_ p: Parameters, _ step: StepAssembly) throws -> Built<Tile, Tile> {
        .stage(FocusStage(name: step.name, minimumSharpness: p.minSharpness))
    }
}

/// Keeps tiles whose sharpness reaches the threshold.
public struct FocusStage: Stage {
    let name: String
    let minimumSharpness: Double

    public func process(_ tile: Tile, _ context: StageContext<Tile>) throws {
        guard tile.image.width > 0 else {
            throw StageError(.invalidInput, "\(tile)", "no pixels to judge (a `cached_tiles` source reads none); put `focus` before the cache or after a flow's `cache` step")
        }
        guard Self.sharpness(tile.image) >= minimumSharpness else { return context.count("\(name).blurred") }
        context.count("\(name).kept")
        try context.emit(tile)
    }

    /// The variance of the 4-neighbour Laplacian, 4·g(x, y) − g(x±1, y) − g(x, y±1), over the
    /// interior pixels of the grey image g = 0.299 R + 0.587 G + 0.114 B; 0 for images under 3×3.
    public static func sharpness(_ image: RGBImage) -> Double {
        let (w, h) = (image.width, image.height)
        guard w >= 3, h >= 3 else { return 0 }
        var grey = [Double](repeating: 0, count: w * h)
        image.pixels.withUnsafeBufferPointer { p in
            for i in 0..<(w * h) {
                let red = 0.299 * Double(p[3 * i]), green = 0.587 * Double(p[3 * i + 1]), blue = 0.114 * Double(p[3 * i + 2])
                grey[i] = red + green + blue
            }
        }
        var sum = 0.0, squares = 0.0
        for y in 1..<(h - 1) {
            for x in 1..<(w - 1) {
                let i = y * w + x
                let neighbours: Double = grey[i - 1] + grey[i + 1] + grey[i - w] + grey[i + w]
                let laplacian: Double = 4 * grey[i] - neighbours
                sum += laplacian
                squares += laplacian * laplacian
            }
        }
        let n = Double((w - 2) * (h - 2))
        return squares / n - (sum / n) * (sum / n)
    }
}
