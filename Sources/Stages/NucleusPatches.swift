import Flow
import Foundation
import Randomness
import Slides
import Tensors
import TileCache
import Tiling

/// Instance + type masks → one patch per nucleus, labelled by its type (how PanNuke, CoNSeP and
/// Lizard are distributed).
///
/// Each instance's centroid is the centre of a `patch`² crop; its label is the most frequent
/// non-zero type under the instance. Patches overlap, so the split is by region: the image is cut
/// into `regions`×`regions` blocks, whole blocks go to train, validation or test (seeded), and a
/// patch reaching outside its block is dropped (counted), so no test patch shares pixels with a
/// training patch.
public struct NucleusPatches: Sendable {
    public struct Result: Sendable {
        public var tiles: [Tile]
        public var droppedOnBorders: Int
        public var classes: [String]
    }

    public static func extract(image imagePath: String, instances: String, types: String, patch: Int, regions: Int,
                               classNames: [String], validationRegions: Int, testRegions: Int, seed: UInt64) throws -> Result {
        let image = try ImageFile.read(imagePath)
        let identity = try Fingerprint.source(path: imagePath)
        let instance = try NumpyArray.read(instances), type = try NumpyArray.read(types)
        guard instance.width == image.width, instance.height == image.height, type.width == image.width, type.height == image.height else {
            throw StageError(.invalidInput, "\(imagePath)", "image \(image.width)×\(image.height), instance mask \(instance.width)×\(instance.height), type mask \(type.width)×\(type.height): they must match")
        }
        // Centroids and majority types, one pass.
        var sums: [Int32: (x: Int, y: Int, n: Int, types: [Int: Int])] = [:]
        for y in 0..<image.height {
            for x in 0..<image.width {
                let id = instance[x, y]
                guard id > 0 else { continue }
                var entry = sums[id] ?? (0, 0, 0, [:])
                entry.x += x; entry.y += y; entry.n += 1
                let t = Int(type[x, y])
                if t > 0 { entry.types[t, default: 0] += 1 }
                sums[id] = entry
            }
        }
        let blocks = regions * regions
        guard validationRegions + testRegions < blocks else {
            throw StageError("\(regions)×\(regions) regions leave none for training after \(validationRegions) validation and \(testRegions) test regions")
        }
        var generator = RandomGenerator(seed: seed)
        let order = generator.permutation(blocks)
        var splitOf = [String](repeating: "train", count: blocks)
        for b in order.prefix(validationRegions) { splitOf[b] = "validation" }
        for b in order.dropFirst(validationRegions).prefix(testRegions) { splitOf[b] = "test" }

        let blockWidth = Double(image.width) / Double(regions), blockHeight = Double(image.height) / Double(regions)
        var tiles: [Tile] = [], dropped = 0
        for id in sums.keys.sorted() {
            let entry = sums[id]!
            guard let (typeIndex, _) = entry.types.max(by: { $0.value < $1.value || ($0.value == $1.value && $0.key > $1.key) }) else { continue }
            let cx = entry.x / entry.n, cy = entry.y / entry.n
            let left = cx - patch / 2, top = cy - patch / 2
            let column = min(regions - 1, Int(Double(cx) / blockWidth)), row = min(regions - 1, Int(Double(cy) / blockHeight))
            let x0 = Double(column) * blockWidth, y0 = Double(row) * blockHeight
            guard Double(left) >= x0, Double(top) >= y0, Double(left + patch) <= x0 + blockWidth, Double(top + patch) <= y0 + blockHeight else {
                dropped += 1
                continue
            }
            var pixels = [UInt8](repeating: 0, count: patch * patch * 3)
            for y in 0..<patch {
                let from = ((top + y) * image.width + left) * 3
                pixels.replaceSubrange(y * patch * 3..<(y + 1) * patch * 3, with: image.pixels[from..<(from + patch * 3)])
            }
            let label = typeIndex - 1 < classNames.count ? classNames[typeIndex - 1] : "type\(typeIndex)"
            var tile = Tile(source: imagePath, column: Int(id), row: 0, scaleIndex: 0, level0X: left, level0Y: top,
                            requestedMicronsPerPixel: 0, effectiveMicronsPerPixel: 0, tissueFraction: 1, label: label,
                            image: RGBImage(width: patch, height: patch, pixels: pixels))
            tile.split = splitOf[row * regions + column]
            tile.sourceIdentity = identity
            tiles.append(tile)
        }
        return Result(tiles: tiles, droppedOnBorders: dropped, classes: classNames)
    }
}
