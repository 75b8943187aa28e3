import Foundation
import Slides
import Tiling
import XCTest

/// Tissue outlines: a point lies inside the traced polygons exactly where the mask is tissue, and
/// the GeoJSON written for QuPath reads back as the same regions.
final class TissueContourTests: XCTestCase {
    /// A mask with an island, a ring with a hole and an island inside the hole, a diagonal touch
    /// (two pixels sharing only a corner) and tissue on the border, plus seeded noise.
    func mask() -> TissueMask {
        let (w, h) = (40, 30)
        var pixels = [UInt8](repeating: 0, count: w * h)
        func set(_ x: Int, _ y: Int) { pixels[y * w + x] = 1 }
        for y in 2..<6 { for x in 2..<8 { set(x, y) } }                                        // island
        for y in 8..<22 { for x in 8..<24 where !(11..<21 ~= x && 11..<19 ~= y) { set(x, y) } }  // ring with a hole
        for y in 14..<16 { for x in 15..<17 { set(x, y) } }                                    // island in the hole
        set(30, 3); set(31, 4)                                                                 // diagonal touch
        for y in 0..<h { set(w - 1, y) }                                                       // border column
        var state: UInt64 = 7
        for _ in 0..<60 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            set(Int(state >> 33) % w, Int(state >> 17) % h)
        }
        return TissueMask(width: w, height: h, downsample: 16, micronsPerPixel: 8, pixels: pixels)
    }

    func testEveryMaskPixelCentreIsInsideExactlyWhenItIsTissue() throws {
        let mask = mask()
        let polygons = mask.contours.map { Annotation(classification: nil, rings: $0) }
        XCTAssertGreaterThan(polygons.filter { $0.rings.count > 1 }.count, 0, "the ring keeps its hole")
        for y in 0..<mask.height {
            for x in 0..<mask.width {
                let (cx, cy) = ((Double(x) + 0.5) * mask.downsample, (Double(y) + 0.5) * mask.downsample)
                let inside = polygons.contains { $0.contains(x: cx, y: cy) }
                XCTAssertEqual(inside, mask.pixels[y * mask.width + x] != 0, "mask pixel (\(x), \(y))")
            }
        }
        // Straight runs are one segment: no three consecutive points of a ring lie on one line.
        for ring in mask.contours.joined() {
            let open = Array(ring.dropLast())
            for i in open.indices {
                let (a, p, b) = (open[(i + open.count - 1) % open.count], open[i], open[(i + 1) % open.count])
                XCTAssertNotEqual((p.x - a.x) * (b.y - p.y), (p.y - a.y) * (b.x - p.x), "a corner in a straight run at \(p)")
            }
        }
    }

    func testGeoJSONReadsBackAsTheSameRegions() throws {
        let mask = mask()
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tissue-\(UUID()).geojson")
        defer { try? FileManager.default.removeItem(at: url) }
        try mask.geoJSON().write(to: url)
        let (read, ignored) = try Annotation.read(geoJSON: url)
        XCTAssertEqual(ignored, 0)
        XCTAssertEqual(read.count, 1)
        XCTAssertEqual(read[0].classification, "Tissue")
        for y in 0..<mask.height {
            for x in 0..<mask.width {
                XCTAssertEqual(read[0].contains(x: (Double(x) + 0.5) * 16, y: (Double(y) + 0.5) * 16), mask.pixels[y * mask.width + x] != 0)
            }
        }
    }
}
