import Foundation
import Slides
import Tiling
import XCTest

final class TissueTests: XCTestCase {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func sample(_ name: String) throws -> String {
        let path = Self.repository.appendingPathComponent("data/samples/\(name)").path
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("run `make samples` (make test does it)") }
        return path
    }

    /// Two shapes of known area on glass: the detected fraction is within 5 % of the truth, a pen
    /// stroke and specks of debris are not tissue.
    func testSyntheticSlideWithKnownLayout() throws {
        var slide = SyntheticSlide(width: 4096, height: 3072) { x, y in
            let inRectangle = x >= 300 && x < 1800 && y >= 400 && y < 2600
            let dx = Double(x - 2900), dy = Double(y - 1500)
            return inRectangle || dx * dx + dy * dy < 900 * 900
        }
        let truth = slide.truthFraction
        // A blue pen line across the glass and a few specks of debris (smaller than the minimum region).
        slide.paint((40, 60, 200)) { x, y in y >= 2850 && y < 2900 && x > 200 && x < 3900 }
        slide.paint((120, 70, 150)) { x, y in (x - 3800) * (x - 3800) + (y - 300) * (y - 300) < 30 * 30 }
        let url = try slide.write(micronsPerPixel: 0.5)
        defer { try? FileManager.default.removeItem(at: url) }
        let reader = try TIFFSlide(path: url.path)
        let mask = try TissueDetector().detect(reader)
        XCTAssertEqual(mask.downsample, 16, accuracy: 1e-9)  // 8 µm/px from 0.5 µm/px
        XCTAssertEqual(mask.micronsPerPixel ?? 0, 8, accuracy: 1e-9)
        print(String(format: "synthetic tissue: truth %.4f, detected %.4f", truth, mask.tissueFraction))
        XCTAssertEqual(mask.tissueFraction, truth, accuracy: 0.05 * truth)
        // Region fractions from the mask: inside the rectangle, on glass, half over its edge.
        XCTAssertGreaterThan(mask.fraction(level0Origin: (500, 600), size: (448, 448)), 0.99)
        XCTAssertLessThan(mask.fraction(level0Origin: (2000, 2840), size: (448, 100)), 0.01, "the pen stroke is not tissue")
        XCTAssertLessThan(mask.fraction(level0Origin: (3700, 200), size: (200, 200)), 0.01, "debris below the minimum area is dropped")
        XCTAssertEqual(mask.fraction(level0Origin: (1800 - 224, 1000), size: (448, 448)), 0.5, accuracy: 0.06)
        XCTAssertEqual(mask.fraction(level0Origin: (-1000, -1000), size: (500, 500)), 0)

        // The mask as PNG and as a pyramid aligned with the slide by µm/px.
        let png = url.deletingPathExtension().appendingPathExtension("mask.png")
        let tiff = url.deletingPathExtension().appendingPathExtension("mask.tif")
        defer { try? FileManager.default.removeItem(at: png); try? FileManager.default.removeItem(at: tiff) }
        try mask.writePNG(to: png)
        try mask.writePyramid(to: tiff)
        let back = try ImageFile.read(png.path)
        XCTAssertEqual(back, mask.image)
        let pyramid = try TIFFSlide(path: tiff.path)
        XCTAssertEqual(pyramid.micronsPerPixel ?? 0, 8, accuracy: 1e-6)
        XCTAssertEqual(Double(pyramid.levels[0].width) * 8, Double(reader.levels[0].width) * 0.5, accuracy: 16)
    }

    func testHolesAreFilledAndBlankSlidesStayBlank() {
        let detector = TissueDetector()
        // A ring of tissue at mask resolution: the lumen is filled.
        let ring = SyntheticSlide(width: 120, height: 120) { x, y in
            let d = (Double(x) - 60) * (Double(x) - 60) + (Double(y) - 60) * (Double(y) - 60)
            return d < 40 * 40 && d > 20 * 20
        }
        let filled = detector.classify(ring.image, micronsPerMaskPixel: 8)
        XCTAssertEqual(filled[60 * 120 + 60], 1, "the hole inside the ring is tissue")
        XCTAssertEqual(filled[5 * 120 + 5], 0)
        var noFill = detector
        noFill.parameters.fillHoles = false
        XCTAssertEqual(noFill.classify(ring.image, micronsPerMaskPixel: 8)[60 * 120 + 60], 0)
        let blank = SyntheticSlide(width: 100, height: 100) { _, _ in false }
        XCTAssertEqual(detector.classify(blank.image, micronsPerMaskPixel: 8).reduce(0) { $0 + Int($1) }, 0)
    }

    func testRealSamples() throws {
        let cmu = try TIFFSlide(path: sample("cmu_small_region.svs"))
        let mask = try TissueDetector().detect(cmu)
        print(String(format: "CMU-1 small region: %d×%d mask at %.2f µm/px, tissue %.3f", mask.width, mask.height, mask.micronsPerPixel ?? 0, mask.tissueFraction))
        XCTAssertGreaterThan(mask.tissueFraction, 0.2)
        XCTAssertLessThan(mask.tissueFraction, 0.95)
        let tcga = try TIFFSlide(path: sample("tcga-cr-7395-01a-01-ts1.svs"), micronsPerPixelOverride: 0.25)
        let tcgaMask = try TissueDetector().detect(tcga)
        print(String(format: "TCGA sample: %d×%d mask, tissue %.3f", tcgaMask.width, tcgaMask.height, tcgaMask.tissueFraction))
        XCTAssertGreaterThan(tcgaMask.tissueFraction, 0.05)
        XCTAssertLessThan(tcgaMask.tissueFraction, 0.95)
    }
}
