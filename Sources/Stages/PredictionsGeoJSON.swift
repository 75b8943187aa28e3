import Foundation

/// Tile predictions of one slide as GeoJSON in level-0 pixel coordinates, the form QuPath imports
/// (File › Import objects): a FeatureCollection of square tile polygons, each a `detection` classified
/// as its most likely class, with every class probability as a measurement (`p_<class>`) and the
/// tile's grid cell. Written as the tiles are scored (a `PartialFile`, in place once complete).
final class PredictionsGeoJSON {
    private let file: PartialFile
    private var first = true
    /// Each class name, and its measurement's name, as JSON strings (quoted and escaped once).
    private let names: [String], measurements: [String]

    init(_ url: URL, classes: [String]) throws {
        func quoted(_ text: String) throws -> String {
            String(decoding: try JSONSerialization.data(withJSONObject: [text]), as: UTF8.self).dropFirst().dropLast().description
        }
        names = try classes.map(quoted)
        measurements = try classes.map { try quoted("p_\($0)") }
        file = try PartialFile(url)
        file.write("{\"type\": \"FeatureCollection\", \"features\": [\n")
    }

    /// One tile: the square of side `size` from (`x`, `y`), level-0 pixels, with its probability of
    /// each class (in the order of the classes given at the start). Formatted directly: this runs
    /// for every tile evaluated.
    func add(x: Int, y: Int, size: Double, column: Int, row: Int, probabilities: [Double]) {
        let (left, top, right, bottom) = (Double(x), Double(y), Double(x) + size, Double(y) + size)
        let ring = [(left, top), (right, top), (right, bottom), (left, bottom), (left, top)].map { "[\($0.0), \($0.1)]" }.joined(separator: ", ")
        let best = probabilities.indices.max { probabilities[$0] < probabilities[$1] }
        let values = zip(measurements, probabilities).map { "\($0.0): " + String(format: "%.5f", $0.1) }.joined(separator: ", ")
        let feature = "{\"geometry\": {\"coordinates\": [[\(ring)]], \"type\": \"Polygon\"}, \"properties\": {\"classification\": {\"name\": "
            + (best.map { names[$0] } ?? "\"\"") + "}, \"column\": \(column), \"measurements\": {\(values)}, \"objectType\": \"detection\", \"row\": \(row)}, \"type\": \"Feature\"}"
        file.write((first ? "" : ",\n") + feature)
        first = false
    }

    /// Ends the collection and moves the file into place.
    func finish() throws {
        file.write("\n]}\n")
        try file.commit()
    }
}
