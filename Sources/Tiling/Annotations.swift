import Diagnostics
import Foundation

/// A region a pathologist drew (a QuPath annotation): polygon rings in level-0 pixels — the first
/// ring of each polygon its outline, later ones its holes — and its class, if it has one.
public struct Annotation: Sendable {
    public var classification: String?
    /// Every ring of every polygon of the annotation, each closed or not.
    public var rings: [[(x: Double, y: Double)]]

    public init(classification: String?, rings: [[(x: Double, y: Double)]]) {
        (self.classification, self.rings) = (classification, rings)
    }

    /// Whether (x, y) lies inside: an odd number of ring crossings to its right (even-odd rule,
    /// so holes are holes and the polygons of a MultiPolygon add up).
    public func contains(x: Double, y: Double) -> Bool {
        var inside = false
        for ring in rings where ring.count >= 3 {
            var j = ring.count - 1
            for i in ring.indices {
                let (a, b) = (ring[i], ring[j])
                if (a.y > y) != (b.y > y) && x < (b.x - a.x) * (y - a.y) / (b.y - a.y) + a.x { inside.toggle() }
                j = i
            }
        }
        return inside
    }

    /// The annotations of a GeoJSON file as QuPath exports them: a FeatureCollection, a list of
    /// Features or one Feature; Polygon and MultiPolygon geometries in level-0 pixels; the class
    /// from `properties.classification.name` (or a plain `classification` string). Other
    /// geometries (points, lines) enclose nothing and are counted in `ignored`.
    public static func read(geoJSON url: URL) throws -> (annotations: [Annotation], ignored: Int) {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(contentsOf: url))
        } catch {
            throw AnnotationError(url.path, "not readable GeoJSON (\(error.localizedDescription)); export annotations from QuPath with File › Export objects as GeoJSON")
        }
        var features: [[String: Any]]
        if let list = object as? [[String: Any]] {
            features = list
        } else if let dictionary = object as? [String: Any], dictionary["type"] as? String == "FeatureCollection" {
            features = dictionary["features"] as? [[String: Any]] ?? []
        } else if let dictionary = object as? [String: Any], dictionary["type"] as? String == "Feature" {
            features = [dictionary]
        } else {
            throw AnnotationError(url.path, "not a GeoJSON FeatureCollection, Feature or list of Features")
        }
        var annotations: [Annotation] = [], ignored = 0
        for (number, feature) in features.enumerated() {
            let geometry = feature["geometry"] as? [String: Any]
            let properties = feature["properties"] as? [String: Any]
            let classification = (properties?["classification"] as? [String: Any])?["name"] as? String ?? properties?["classification"] as? String
            let polygons: [Any]
            switch geometry?["type"] as? String {
            case "Polygon": polygons = [geometry?["coordinates"] as Any]
            case "MultiPolygon": polygons = geometry?["coordinates"] as? [Any] ?? []
            default: ignored += 1; continue
            }
            var rings: [[(x: Double, y: Double)]] = []
            for polygon in polygons {
                guard let list = polygon as? [[[Double]]], list.allSatisfy({ $0.allSatisfy { $0.count >= 2 && $0[0].isFinite && $0[1].isFinite } }) else {
                    throw AnnotationError(url.path, "feature \(number + 1): polygon coordinates must be lists of [x, y] numbers")
                }
                rings += list.map { $0.map { (x: $0[0], y: $0[1]) } }
            }
            annotations.append(Annotation(classification: classification, rings: rings))
        }
        return (annotations, ignored)
    }
}

/// A GeoJSON file that cannot be read as annotations, naming it.
public struct AnnotationError: Problem {
    public let path: String
    public let message: String
    init(_ path: String, _ message: String) { (self.path, self.message) = (path, message) }
    public var kindName: String { "unreadableAnnotations" }
    public var subject: String { path }
}
