import Foundation

/// The outlines of a tissue mask as polygons in level-0 pixels: each polygon an outer ring with
/// the rings of its holes, traced along the edges of mask pixels (so a point lies inside exactly
/// when the mask pixel under it is tissue) with straight runs merged into one segment.
extension TissueMask {
    /// Polygons, each `[outer ring, hole rings…]`, rings closed (last point = first).
    public var contours: [[[(x: Double, y: Double)]]] {
        // Directed edges between pixel corners with tissue on the right (x right, y down: an outer
        // ring runs clockwise on screen, a hole anticlockwise).
        var edges: [Int: [Int]] = [:]  // start corner → end corners
        let columns = width + 1
        func corner(_ x: Int, _ y: Int) -> Int { y * columns + x }
        func tissue(_ x: Int, _ y: Int) -> Bool { x >= 0 && y >= 0 && x < width && y < height && pixels[y * width + x] != 0 }
        for y in 0..<height {
            for x in 0..<width where tissue(x, y) {
                if !tissue(x, y - 1) { edges[corner(x, y), default: []].append(corner(x + 1, y)) }
                if !tissue(x + 1, y) { edges[corner(x + 1, y), default: []].append(corner(x + 1, y + 1)) }
                if !tissue(x, y + 1) { edges[corner(x + 1, y + 1), default: []].append(corner(x, y + 1)) }
                if !tissue(x - 1, y) { edges[corner(x, y + 1), default: []].append(corner(x, y)) }
            }
        }
        // Link the edges into rings; each edge is used once, so the even-odd rule gives the mask
        // whichever way rings are split at corners shared by two diagonal pixels.
        var rings: [[Int]] = []
        while let start = edges.keys.min() {
            var ring = [start], current = start
            while true {
                guard var next = edges[current], !next.isEmpty else { break }
                let end = next.removeLast()
                edges[current] = next.isEmpty ? nil : next
                if end == start { break }
                ring.append(end)
                current = end
            }
            rings.append(ring)
        }
        // Corners to level-0 points, dropping corners in the middle of straight runs.
        func points(_ ring: [Int]) -> [(x: Double, y: Double)] {
            let xy = ring.map { ($0 % columns, $0 / columns) }
            var kept: [(Int, Int)] = []
            for (i, p) in xy.enumerated() {
                let a = xy[(i + xy.count - 1) % xy.count], b = xy[(i + 1) % xy.count]
                if (p.0 - a.0) * (b.1 - p.1) != (p.1 - a.1) * (b.0 - p.0) { kept.append(p) }  // a turn
            }
            let scaled = kept.map { (x: Double($0.0) * downsample, y: Double($0.1) * downsample) }
            return scaled + (scaled.first.map { [$0] } ?? [])
        }
        // Signed area (shoelace, y down): positive for the clockwise outer rings.
        func area(_ ring: [(x: Double, y: Double)]) -> Double {
            zip(ring, ring.dropFirst()).reduce(0) { $0 + ($1.0.x * $1.1.y - $1.1.x * $1.0.y) } / 2
        }
        let traced = rings.map(points).filter { $0.count >= 4 }
        let outers = traced.filter { area($0) > 0 }, holes = traced.filter { area($0) < 0 }
        var polygons = outers.map { [$0] }
        for hole in holes {
            // A point just inside the hole's first edge, on its tissue side, lies in its outer ring.
            let (a, b) = (hole[0], hole[1])
            let length = max(abs(b.x - a.x), abs(b.y - a.y))
            let (dx, dy) = ((b.x - a.x) / length, (b.y - a.y) / length)
            let probe = (x: (a.x + b.x) / 2 - dy * 0.25 * downsample, y: (a.y + b.y) / 2 + dx * 0.25 * downsample)
            if let index = polygons.indices.first(where: { Annotation(classification: nil, rings: [polygons[$0][0]]).contains(x: probe.x, y: probe.y) }) {
                polygons[index].append(hole)
            }
        }
        return polygons
    }
}

extension TissueMask {
    /// The contours as a GeoJSON FeatureCollection QuPath imports: one annotation of class
    /// `classification` whose geometry is a MultiPolygon in level-0 pixels.
    public func geoJSON(classification: String = "Tissue") throws -> Data {
        let coordinates = contours.map { polygon in polygon.map { ring in ring.map { [$0.x, $0.y] } } }
        let feature: [String: Any] = [
            "type": "Feature",
            "geometry": ["type": "MultiPolygon", "coordinates": coordinates],
            "properties": ["objectType": "annotation", "classification": ["name": classification]] as [String: Any],
        ]
        return try JSONSerialization.data(withJSONObject: ["type": "FeatureCollection", "features": [feature]], options: [.sortedKeys])
    }
}
