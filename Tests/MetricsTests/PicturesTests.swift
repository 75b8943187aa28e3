import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Metrics
import Plots
import XCTest

/// ROC curves with known answers, and the SVG pictures drawn from them.
final class PicturesTests: XCTestCase {
    func testROCCurveHasKnownPointsAndItsAreaIsTheAUC() throws {
        let positive = [true, false, true, false], scores = [0.9, 0.8, 0.7, 0.6]
        let curve = try XCTUnwrap(RankingMetrics.rocCurve(positive: positive, scores: scores))
        XCTAssertEqual(curve.map(\.falsePositiveRate), [0, 0, 0.5, 0.5, 1])
        XCTAssertEqual(curve.map(\.truePositiveRate), [0, 0.5, 0.5, 1, 1])
        // Ties move both rates at once, and the trapezoid area equals the rank AUC (ties count ½).
        let tiedPositive = [true, false, true, true, false, false], tied = [0.9, 0.5, 0.5, 0.3, 0.3, 0.1]
        let tiedCurve = try XCTUnwrap(RankingMetrics.rocCurve(positive: tiedPositive, scores: tied))
        var area = 0.0
        for (a, b) in zip(tiedCurve, tiedCurve.dropFirst()) { area += (b.falsePositiveRate - a.falsePositiveRate) * (a.truePositiveRate + b.truePositiveRate) / 2 }
        XCTAssertEqual(area, try XCTUnwrap(RankingMetrics.rocAUC(positive: tiedPositive, scores: tied)), accuracy: 1e-12)
        XCTAssertEqual(tiedCurve.count, 5, "(0,0) and one point per distinct score")
        XCTAssertNil(RankingMetrics.rocCurve(positive: [true, true], scores: [0.1, 0.2]))
    }

    /// The SVG is well-formed XML with one line per series, in the plot's frame, and escapes text.
    func testPicturesAreWellFormedSVG() throws {
        let svg = SVGPlot.lines(title: "a < b & \"c\"", xLabel: "x", yLabel: "y",
                                series: [SVGPlot.Series("one", [(0, 0), (1, 1)]), SVGPlot.Series("two", [(0, 1), (0.5, 0.25), (1, 0)])],
                                xRange: 0...1, yRange: 0...1, diagonal: true)
        let confusion = SVGPlot.confusion(title: "m", classes: ["x", "y"], counts: [[3, 1], [0, 4]])
        for picture in [svg, confusion] {
            let parser = XMLParser(data: Data(picture.utf8))
            XCTAssertTrue(parser.parse(), "not well-formed: \(parser.parserError.map { "\($0)" } ?? "")\n\(picture)")
        }
        XCTAssertEqual(svg.components(separatedBy: "class=\"series\"").count - 1, 2)
        // The plot area is x 70…470, y 40…350: (0, 0) is its lower-left corner, (1, 1) its upper-right one.
        XCTAssertTrue(svg.contains("points=\"70.00,350.00 470.00,40.00\""), svg)
        XCTAssertTrue(svg.contains("a &lt; b &amp; &quot;c&quot;"), svg)
        XCTAssertTrue(confusion.contains(">3<") && confusion.contains(">4<"), confusion)
    }
}

/// The raster font of the heatmap legends.
final class BitmapFontTests: XCTestCase {
    func testGlyphsAreDrawnWhereAndAsLargeAsAsked() {
        var pixels = [UInt8](repeating: 255, count: 20 * 10 * 3)
        BitmapFont.draw("1-", x: 2, y: 1, colour: (0, 0, 0), into: &pixels, width: 20, height: 10)
        func dark(_ x: Int, _ y: Int) -> Bool { pixels[(y * 20 + x) * 3] == 0 }
        // "1": its stem is the glyph's middle column, rows 0…6; its base spans columns 1…3.
        XCTAssertTrue((1...7).allSatisfy { dark(4, $0) })
        XCTAssertTrue(dark(3, 7) && dark(5, 7) && !dark(2, 7) && !dark(6, 7))
        // "-": the middle row of the next glyph, 6 pixels on.
        XCTAssertTrue((8...12).allSatisfy { dark($0, 4) })
        XCTAssertFalse(dark(8, 3))
        XCTAssertEqual(BitmapFont.width(of: "1-"), 11)
        XCTAssertEqual(BitmapFont.width(of: "ab", scale: 2), 22)

        var big = [UInt8](repeating: 255, count: 12 * 16 * 3)
        BitmapFont.draw("é", x: 0, y: 0, scale: 2, colour: (9, 9, 9), into: &big, width: 12, height: 16)
        XCTAssertEqual(big[(0 * 12 + 2) * 3], 9, "an unknown character is drawn as '?' (its top row starts at column 1)")
        XCTAssertEqual(big[(0 * 12 + 0) * 3], 255)
        BitmapFont.draw("W", x: 10, y: 14, colour: (1, 1, 1), into: &big, width: 12, height: 16)  // clipped, no trap
    }
}
