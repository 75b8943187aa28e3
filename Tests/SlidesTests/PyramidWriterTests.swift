import Foundation
import Slides
import Tensors
import XCTest

/// The pyramid writer, read back by this reader. (Also checked by tifffile and OpenSlide with
/// scripts/reference/check_written_pyramids.py on files kept via SSMAMBA_TEST_OUTPUT=DIR.)
final class PyramidWriterTests: XCTestCase {
    func testWrittenPyramidsReadBack() throws {
        let file = try SafeTensorsFile(contentsOf: URL(fileURLWithPath: SlideFixtures.fixture("pyramid_pixels.safetensors")))
        let base = try file.tensor("level.0")
        let image = RGBImage(width: base.shape[1], height: base.shape[0], pixels: SlideFixtures.bytes(base))
        let keep = ProcessInfo.processInfo.environment["SSMAMBA_TEST_OUTPUT"]
        let directory = keep.map { URL(fileURLWithPath: $0) } ?? FileManager.default.temporaryDirectory.appendingPathComponent("ssmamba-writer-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { if keep == nil { try? FileManager.default.removeItem(at: directory) } }
        let variants: [(String, PyramidWriter.Compression, PyramidWriter.Layout)] = [
            ("deflate-chain.tif", .deflate, .chain), ("deflate-subifd.tif", .deflate, .subIFDs),
            ("jpeg-chain.tif", .jpeg(quality: 95), .chain), ("jpeg-subifd.tif", .jpeg(quality: 95), .subIFDs),
        ]
        for (name, compression, layout) in variants {
            let url = directory.appendingPathComponent(name)
            try PyramidWriter.write(image, to: url, micronsPerPixel: 0.5, compression: compression, tileSize: 128, layout: layout)
            let slide = try TIFFSlide(path: url.path)
            XCTAssertEqual(slide.levels.map { [$0.width, $0.height] }, [[512, 384], [256, 192], [128, 96]], name)
            XCTAssertEqual(try XCTUnwrap(slide.micronsPerPixel), 0.5, accuracy: 1e-4, name)
            XCTAssertEqual(slide.properties["tiff.Software"], "ssmamba", "\(name): the Software tag reads back")
            let level0 = try slide.readRegion(level0Origin: (0, 0), size: (512, 384), level: 0)
            let level2 = try slide.readRegion(level0Origin: (0, 0), size: (128, 96), level: 2)
            let expected2 = SlideFixtures.bytes(try file.tensor("level.2"))
            if compression == .deflate {
                XCTAssertEqual(level0, image, name)
                XCTAssertGreaterThan(SlideFixtures.psnr(level2.pixels, expected2), 45, "\(name): level 2 is a 4×4 area average")
            } else {
                XCTAssertGreaterThan(SlideFixtures.psnr(level0.pixels, image.pixels), 30, name)
                // 8-px saturated checkers at level 2 lose colour to JPEG's 2×2 chroma subsampling.
                XCTAssertGreaterThan(SlideFixtures.psnr(level2.pixels, expected2), 20, name)
            }
        }
        XCTAssertThrowsError(try PyramidWriter.write(image, to: URL(fileURLWithPath: "/nonexistent/dir/x.tif"), micronsPerPixel: nil)) { error in
            XCTAssertTrue(String(describing: error).contains("/nonexistent/dir/x.tif"))
        }
    }

    /// µm/px outside 0.01…100, recorded in a file or given as an override, is refused with what
    /// to do (it made later size arithmetic trap); a plausible override opens such a file.
    func testImplausibleMicronsPerPixelIsRefused() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ssmamba-mpp-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let image = RGBImage(width: 64, height: 64, filling: (200, 120, 180))
        for mpp in [0.001, 500] {
            let url = directory.appendingPathComponent("mpp-\(mpp).tif")
            try PyramidWriter.write(image, to: url, micronsPerPixel: mpp, compression: .deflate)
            XCTAssertThrowsError(try TIFFSlide(path: url.path)) { error in
                XCTAssertEqual((error as? SlideError)?.kind, .missingResolution, "\(error)")
                XCTAssertTrue("\(error)".contains("outside 0.01…100") && "\(error)".contains("mpp_override"), "\(error)")
            }
            XCTAssertEqual(try TIFFSlide(path: url.path, micronsPerPixelOverride: 0.5).micronsPerPixel, 0.5)
            for override in [0.0, 1e-300, 1e300, .nan, .infinity] {
                XCTAssertThrowsError(try TIFFSlide(path: url.path, micronsPerPixelOverride: override)) { error in
                    XCTAssertEqual((error as? SlideError)?.kind, .invalidRequest, "\(override): \(error)")
                }
            }
        }
    }
}
