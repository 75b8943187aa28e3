import Foundation
import Randomness
import Slides
import Tensors
import XCTest

/// Synthetic pyramids with known pixels (written by tifffile): IFD chains and SubIFDs, LZW,
/// deflate, JPEG (YCbCr) and JPEG 2000 tiles, resolution tags.
final class PyramidFileTests: XCTestCase {
    func pixels(_ level: Int) throws -> [UInt8] {
        let file = try SafeTensorsFile(contentsOf: URL(fileURLWithPath: SlideFixtures.fixture("pyramid_pixels.safetensors")))
        return SlideFixtures.bytes(try file.tensor("level.\(level)"))
    }

    func testIFDChainAndSubIFDPyramidsReadIdentically() throws {
        for name in ["pyramid_chain.tif", "pyramid_subifd.tif"] {
            let slide = try TIFFSlide(path: SlideFixtures.fixture(name))
            XCTAssertEqual(slide.levels.map { [$0.width, $0.height] }, [[512, 384], [256, 192], [128, 96]], name)
            XCTAssertEqual(slide.levels.map(\.downsample), [1, 2, 4], name)
            XCTAssertEqual(try XCTUnwrap(slide.micronsPerPixel), 0.5, accuracy: 1e-6, "resolution tags in pixels/cm")
            for level in 0..<3 {
                let (w, h) = (slide.levels[level].width, slide.levels[level].height)
                let image = try slide.readRegion(level0Origin: (0, 0), size: (w, h), level: level)
                XCTAssertEqual(image.pixels, try pixels(level), "\(name) level \(level)")
            }
        }
    }

    func testResolutionReadsPickTheNearestFinerLevel() throws {
        let slide = try TIFFSlide(path: SlideFixtures.fixture("pyramid_subifd.tif"))
        XCTAssertEqual(try slide.readRegion(level0Origin: (0, 0), size: (10, 10), micronsPerPixel: 1.0).level, 1)
        XCTAssertEqual(try slide.readRegion(level0Origin: (0, 0), size: (10, 10), micronsPerPixel: 1.9).level, 1)
        XCTAssertEqual(try slide.readRegion(level0Origin: (0, 0), size: (10, 10), micronsPerPixel: 2.0).level, 2)
        XCTAssertEqual(try slide.readRegion(level0Origin: (0, 0), size: (10, 10), micronsPerPixel: 8.0).level, 2)
        // Exactly level 1's resolution: the stored pixels, unchanged.
        let region = try slide.readRegion(level0Origin: (64, 32), size: (20, 12), micronsPerPixel: 1.0)
        let stored = try slide.readRegion(level0Origin: (64, 32), size: (20, 12), level: 1)
        XCTAssertEqual(region.image, stored)
    }

    func testJPEGAndJPEG2000Tiles() throws {
        let jpeg = try TIFFSlide(path: SlideFixtures.fixture("tiles_jpeg_ycbcr.tif"))
        let decoded = try jpeg.readRegion(level0Origin: (0, 0), size: (512, 384), level: 0)
        let file = try SafeTensorsFile(contentsOf: URL(fileURLWithPath: SlideFixtures.fixture("pyramid_pixels.safetensors")))
        let jpegPSNR = SlideFixtures.psnr(decoded.pixels, SlideFixtures.bytes(try file.tensor("jpeg_ycbcr.decoded")))
        XCTAssertGreaterThanOrEqual(jpegPSNR, 40, "YCbCr JPEG tiles (2×2 chroma subsampling) against tifffile's decoding")
        let j2k = try TIFFSlide(path: SlideFixtures.fixture("tiles_jpeg2000.tif"))
        let j2kImage = try j2k.readRegion(level0Origin: (0, 0), size: (256, 192), level: 0)
        XCTAssertEqual(SlideFixtures.psnr(j2kImage.pixels, try pixels(1)), .infinity, "JPEG 2000 written losslessly")
    }

    /// JPEG 2000 tiles cut short: without only their final EOC marker they decode as before (OpenJPEG
    /// 2.5.0 aborted the process on them); cut inside the tile data they are a typed error naming
    /// the file and saying "truncated".
    func testTruncatedJPEG2000TilesDecodeOrFailCleanly() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ssmamba-j2k-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: SlideFixtures.fixture("tiles_jpeg2000.tif"))))
        func uint(_ at: Int, _ size: Int) -> Int { (0..<size).reduce(0) { $0 | Int(original[at + $1]) << (8 * $1) } }  // little-endian
        // TileByteCounts (tag 325, LONG) of the first directory.
        let ifd = uint(4, 4)
        guard let entry = (0..<uint(ifd, 2)).map({ ifd + 2 + 12 * $0 }).first(where: { uint($0, 2) == 325 }) else {
            return XCTFail("fixture has no TileByteCounts")
        }
        let (tiles, counts) = (uint(entry + 4, 4), uint(entry + 8, 4))
        func shortened(by cut: Int) throws -> String {
            var bytes = original
            for tile in 0..<tiles {
                let at = counts + 4 * tile, count = uint(at, 4) - cut
                for k in 0..<4 { bytes[at + k] = UInt8((count >> (8 * k)) & 0xFF) }
            }
            let url = directory.appendingPathComponent("cut\(cut).tif")
            try Data(bytes).write(to: url)
            return url.path
        }
        let withoutEOC = try TIFFSlide(path: try shortened(by: 2)).readRegion(level0Origin: (0, 0), size: (256, 192), level: 0)
        XCTAssertEqual(SlideFixtures.psnr(withoutEOC.pixels, try pixels(1)), .infinity, "tiles without their EOC marker")
        let cutPath = try shortened(by: 100)
        XCTAssertThrowsError(try TIFFSlide(path: cutPath).readRegion(level0Origin: (0, 0), size: (256, 192), level: 0)) { error in
            XCTAssertTrue(error is SlideError, "\(error)")
            XCTAssertTrue(String(describing: error).contains(cutPath) && String(describing: error).contains("truncated"), "\(error)")
        }
    }

    func testBadFilesAreTypedErrorsNamingTheFile() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ssmamba-bad-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let text = directory.appendingPathComponent("notes.svs")
        try Data("not a slide".utf8).write(to: text)
        XCTAssertThrowsError(try TIFFSlide(path: text.path)) { error in
            XCTAssertEqual((error as? SlideError)?.kind, .cannotOpen)
            XCTAssertTrue(String(describing: error).contains(text.path))
        }
        XCTAssertThrowsError(try TIFFSlide(path: directory.appendingPathComponent("missing.svs").path)) { error in
            XCTAssertEqual((error as? SlideError)?.kind, .cannotOpen)
        }
        // A file cut in half: it may open (its directories are first) but reading tiles must fail cleanly.
        let whole = try Data(contentsOf: URL(fileURLWithPath: SlideFixtures.fixture("pyramid_chain.tif")))
        let truncated = directory.appendingPathComponent("truncated.tif")
        try whole.prefix(whole.count / 2).write(to: truncated)
        do {
            let slide = try TIFFSlide(path: truncated.path)
            XCTAssertThrowsError(try slide.readRegion(level0Origin: (0, 0), size: (512, 384), level: 0)) { error in
                XCTAssertTrue(String(describing: error).contains(truncated.path))
            }
        } catch let error as SlideError {
            XCTAssertTrue(error.description.contains(truncated.path))
        }
    }

    /// Mutation fuzzing over the small fixtures: random byte flips, truncations and splices must give
    /// errors or images, never a crash.
    func testMutatedFilesNeverCrashTheReader() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ssmamba-fuzz-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let corpus = try ["pyramid_subifd.tif", "tiles_jpeg_ycbcr.tif", "tiles_jpeg2000.tif"].map {
            [UInt8](try Data(contentsOf: URL(fileURLWithPath: SlideFixtures.fixture($0))))
        }
        var rng = RandomGenerator(seed: 77)
        var opened = 0, failed = 0
        let iterations = 2_500
        for i in 0..<iterations {
            var bytes = corpus[i % corpus.count]
            switch rng.integer(below: 3) {
            case 0:
                for _ in 0..<(1 + rng.integer(below: 8)) { bytes[rng.integer(below: bytes.count)] = UInt8(rng.integer(below: 256)) }
            case 1:
                // Damage the header region, where the structure lives.
                for _ in 0..<(1 + rng.integer(below: 4)) { bytes[rng.integer(below: min(bytes.count, 512))] ^= UInt8(1 << rng.integer(below: 8)) }
            default:
                bytes = Array(bytes.prefix(rng.integer(below: bytes.count)))
            }
            let url = directory.appendingPathComponent("case.tif")
            try Data(bytes).write(to: url)
            do {
                let slide = try TIFFSlide(path: url.path, micronsPerPixelOverride: 0.5)
                opened += 1
                let level = slide.levels[rng.integer(below: slide.levels.count)]
                _ = try slide.readRegion(level0Origin: (0, 0), size: (min(level.width, 300), min(level.height, 300)),
                                         level: slide.levels.firstIndex(of: level)!)
                _ = try slide.readRegion(level0Origin: (10, 10), size: (50, 50), micronsPerPixel: 1.5)
            } catch is SlideError {
                failed += 1
            }
        }
        print("fuzz: \(iterations) mutated files, \(opened) opened, \(failed) typed errors, no crash")
        XCTAssertGreaterThan(failed, 0)
    }
}
