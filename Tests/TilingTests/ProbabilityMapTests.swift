import Foundation
import Slides
import Tiling
import XCTest

/// The probability map's geometry (pixels over the slide at its physical size), the mean over
/// overlapping tiles, and its files read back: the float32 OME-TIFF pyramid and the colour map.
final class ProbabilityMapTests: XCTestCase {
    /// A 1000×600 slide at 0.5 µm/px, a grid step of 200 level-0 px cut in 4: 50-px map pixels
    /// (25 µm), 20×12 of them (the last column and row reach past the slide's edge).
    func testPixelsLieOverTheSlideAndTilesWithoutOverlapKeepTheirValue() {
        var map = ProbabilityMap(slideWidth: 1000, slideHeight: 600, gridStep: 200, subdivision: 4, slideMicronsPerPixel: 0.5, classes: ["a", "b"])
        XCTAssertEqual(map.width, 20)
        XCTAssertEqual(map.height, 12)
        XCTAssertEqual(map.micronsPerPixel, 25)
        map.add(level0X: 200, level0Y: 0, extent: 200, probabilities: [0.25, 0.75])
        XCTAssertEqual(map.value(1, level0X: 210, level0Y: 5), 0.75)
        XCTAssertEqual(map.value(0, level0X: 399, level0Y: 199), 0.25)
        XCTAssertTrue(map.value(1, level0X: 401, level0Y: 5).isNaN, "right of the tile")
        XCTAssertTrue(map.value(1, level0X: 199, level0Y: 5).isNaN, "left of the tile")
        XCTAssertTrue(map.value(1, level0X: 5000, level0Y: 5).isNaN, "beyond the map")
        let plane = map.plane(1)
        XCTAssertEqual(plane.filter { !$0.isNaN }.count, 16, "a 4×4 block of pixels")
    }

    /// Tiles of 200 px every 100 px: a pixel under four tiles holds their mean, one under a single
    /// tile that tile's value.
    func testOverlappingTilesAverage() {
        var map = ProbabilityMap(slideWidth: 400, slideHeight: 400, gridStep: 100, subdivision: 2, slideMicronsPerPixel: nil, classes: ["p"])
        XCTAssertNil(map.micronsPerPixel)
        var expected: [[Double]] = Array(repeating: Array(repeating: 0, count: 3), count: 3)
        for row in 0..<3 { for column in 0..<3 {
            let p = Double(row * 3 + column) / 10
            expected[row][column] = p
            map.add(level0X: Double(column) * 100, level0Y: Double(row) * 100, extent: 200, probabilities: [p])
        } }
        XCTAssertEqual(Double(map.value(0, level0X: 50, level0Y: 50)), expected[0][0], accuracy: 1e-6, "corner: one tile")
        let centre = (expected[0][0] + expected[0][1] + expected[1][0] + expected[1][1]) / 4
        XCTAssertEqual(Double(map.value(0, level0X: 150, level0Y: 150)), centre, accuracy: 1e-6, "four tiles")
        let middle = (0..<3).flatMap { r in (0..<3).map { expected[r][$0] } }.reduce(0, +) / 9
        XCTAssertEqual(Double(map.value(0, level0X: 210, level0Y: 210)), (expected[1][1] + expected[1][2] + expected[2][1] + expected[2][2]) / 4, accuracy: 1e-6)
        XCTAssertNotEqual(Double(map.value(0, level0X: 210, level0Y: 210)), middle, accuracy: 1e-9)
        XCTAssertEqual(ProbabilityMap.subdivision(columns: 8, rows: 3), 64, "at most 64 pixels per cell")
        XCTAssertEqual(ProbabilityMap.subdivision(columns: 300, rows: 200), 4)
        XCTAssertEqual(ProbabilityMap.subdivision(columns: 5000, rows: 20), 1)
    }

    /// The float32 pyramid read back: values exact, NaN kept, each reduced level the mean of the
    /// finite values below it, channel names (escaped in the XML) and pixel size recovered.
    func testFloatPyramidRoundTrip() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("map-\(UUID()).ome.tif")
        defer { try? FileManager.default.removeItem(at: url) }
        let (width, height) = (300, 70)
        let first = (0..<(width * height)).map { i -> Float in i % width < 10 ? .nan : Float(i % width) / Float(width) }
        let second = first.map { $0.isNaN ? .nan : 1 - $0 }
        try FloatPyramidWriter.write(planes: [first, second], names: ["tumour", "a<b & \"c\""], width: width, height: height,
                                     micronsPerPixel: 2.5, to: url, tileSize: 64)
        let pyramid = try FloatPyramidReader.read(url.path)
        XCTAssertEqual(pyramid.names, ["tumour", "a<b & \"c\""])
        XCTAssertEqual(try XCTUnwrap(pyramid.micronsPerPixel), 2.5, accuracy: 1e-4)
        XCTAssertTrue(pyramid.description.hasPrefix("<?xml") && pyramid.description.contains("PhysicalSizeX=\"2.500000\""))
        XCTAssertEqual(pyramid.planes.count, 2)
        XCTAssertEqual(pyramid.planes[0].map(\.width), [300, 150, 75, 37], "halved until the longer side fits one 64-px tile")
        XCTAssertEqual(pyramid.planes[1].map(\.height), [70, 35, 17, 8])
        XCTAssertEqual(pyramid.planes[0][0].values.count, width * height)
        for (got, want) in zip(pyramid.planes[1][0].values, second) { XCTAssertTrue(got == want || (got.isNaN && want.isNaN)) }
        let half = pyramid.planes[0][1]
        XCTAssertTrue(half.value(x: 4, y: 3).isNaN, "all four NaN")
        XCTAssertEqual(half.value(x: 5, y: 0), (10 + 11) / 2 / 300, accuracy: 1e-6, "columns 10 and 11")
        XCTAssertEqual(half.value(x: 100, y: 20), (200 + 201) / 2 / 300, accuracy: 1e-6)
    }

    func testColourMapMarksTilesAndGlass() {
        var map = ProbabilityMap(slideWidth: 100, slideHeight: 100, gridStep: 50, subdivision: 1, slideMicronsPerPixel: 1, classes: ["p"])
        map.add(level0X: 0, level0Y: 0, extent: 50, probabilities: [1])
        map.add(level0X: 50, level0Y: 0, extent: 50, probabilities: [0])
        let image = HeatmapPictures.colourMap(map, classIndex: 0)
        XCTAssertEqual(Array(image.pixels[0..<3]), [255, 50, 0], "1 is red")
        XCTAssertEqual(Array(image.pixels[3..<6]), [0, 50, 255], "0 is blue")
        XCTAssertEqual(Array(image.pixels[6..<9]), [230, 230, 230], "no tile: grey")
    }

    /// The overlay's thumbnail read in many bands equals the one read in a single piece (the real
    /// H&E crop as a one-level slide, 1500² → 300²).
    func testThumbnailsReadInBandsMatchOneRead() throws {
        let path = TissueTests.repository.appendingPathComponent("data/samples/hgsc_nest.jpg").path
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("run `make samples` (make test does it)") }
        let slide = try Slide.open(path)
        let whole = try HeatmapPictures.thumbnail(slide, width: 300, height: 280, pixelsPerRead: 1 << 30)
        let banded = try HeatmapPictures.thumbnail(slide, width: 300, height: 280, pixelsPerRead: 40_000)  // 7 output rows a read
        XCTAssertEqual(whole.pixels.count, banded.pixels.count)
        XCTAssertLessThanOrEqual(zip(whole.pixels, banded.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 0, 1)
        XCTAssertGreaterThan(Set(whole.pixels).count, 100, "a real picture, not one colour")
    }
}
