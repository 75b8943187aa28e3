import Foundation

/// Tile predictions of one slide as GeoJSON in level-0 pixel coordinates, the form QuPath imports
/// (File › Import objects): a FeatureCollection of square tile polygons, each a `detection` classified
/// as its most likely class, with every class probability as a measurement (`p_<class>`) and the
/// tile's grid cell. Written as the tiles are scored (a `PartialFile`, in place once complete).
final class PredictionsGeoJSON {
    private let file: PartialFile
    private var first = true

    init(_ url: URL) throws {
        file = try PartialFile(url)
        file.write("{\"type\": \"FeatureCollection\", \"features\": [\n")
    }

    /// One tile: the square of side `size` from (`x`, `y`), level-0 pixels.
    func add(x: Int, y: Int, size: Double, column: Int, row: Int, classes: [String], probabilities: [Double]) throws {
        let (left, top, right, bottom) = (Double(x), Double(y), Double(x) + size, Double(y) + size)
        let ring = [[left, top], [right, top], [right, bottom], [left, bottom], [left, top]]
        var measurements: [String: Double] = [:]
        for (name, p) in zip(classes, probabilities) { measurements["p_\(name)"] = (p * 100_000).rounded() / 100_000 }
        let best = probabilities.indices.max { probabilities[$0] < probabilities[$1] }
        let feature: [String: Any] = [
            "type": "Feature",
            "geometry": ["type": "Polygon", "coordinates": [ring]],
            "properties": [
                "objectType": "detection",
                "classification": ["name": best.map { classes[$0] } ?? ""],
                "measurements": measurements,
                "column": column, "row": row,
            ] as [String: Any],
        ]
        let data = try JSONSerialization.data(withJSONObject: feature, options: [.sortedKeys])
        file.write(Data((first ? "" : ",\n").utf8) + data)
        first = false
    }

    /// Ends the collection and moves the file into place.
    func finish() throws {
        file.write("\n]}\n")
        try file.commit()
    }
}
