import Foundation
import Randomness
import Slides
import Tensors
import XCTest

/// The two real Aperio samples (DATA.md), against facts stated for them and against crops decoded
/// by tifffile + imagecodecs (scripts/reference/make_slide_fixtures.py).
final class RealSlideTests: XCTestCase {
    func testCMUSmallRegionMetadata() throws {
        let slide = try TIFFSlide(path: try SlideFixtures.sample("cmu_small_region.svs"))
        XCTAssertEqual(slide.vendor, "aperio")
        XCTAssertEqual(slide.levels.count, 1)
        XCTAssertEqual(slide.levels[0].width, 2220)
        XCTAssertEqual(slide.levels[0].height, 2967)
        XCTAssertEqual(slide.levels[0].tileWidth, 240)
        XCTAssertEqual(slide.levels[0].compression, "JPEG")
        XCTAssertEqual(try XCTUnwrap(slide.micronsPerPixel), 0.499, accuracy: 1e-9)
        XCTAssertEqual(slide.objectivePower, 20)
        XCTAssertEqual(slide.associatedImageNames, ["thumbnail", "label", "macro"])
        let label = try slide.associatedImage("label")
        XCTAssertEqual([label.width, label.height], [387, 463])
    }

    /// Without a tile cache, JPEG tiles are decoded only where a region covers them (libjpeg's
    /// cropping and skipping, with a margin for fancy upsampling): every pixel equals the full
    /// decode's, for regions of every size and offset, across tile borders and the slide's edge.
    func testWindowedJPEGDecodingEqualsFullDecoding() throws {
        // The Aperio sample (RGB JPEG tiles), and a YCbCr 4:2:0 pyramid as PyramidWriter writes it.
        let written = FileManager.default.temporaryDirectory.appendingPathComponent("ycbcr-\(UUID()).tif")
        defer { try? FileManager.default.removeItem(at: written) }
        var noise = RandomGenerator(seed: 3)
        let texture = RGBImage(width: 1000, height: 700, pixels: (0..<(1000 * 700 * 3)).map { i in
            UInt8(truncatingIfNeeded: (i / 3 % 1000) / 7 + (i / 3000) / 5 * (i % 3 + 1) + noise.integer(below: 40))
        })
        try PyramidWriter.write(texture, to: written, micronsPerPixel: 0.5, compression: .jpeg(quality: 80), tileSize: 256)
        for path in [try SlideFixtures.sample("cmu_small_region.svs"), written.path] {
            let windowed = try TIFFSlide(path: path, cache: DecodedTileCache(capacityBytes: 0))
            let whole = try TIFFSlide(path: path)
            let (slideWidth, slideHeight) = (whole.levels[0].width, whole.levels[0].height)
            var rng = RandomGenerator(seed: 17)
            var compared = 0
            for _ in 0..<150 {
                let width = 1 + rng.integer(below: 500), height = 1 + rng.integer(below: 500)
                let x = max(rng.integer(below: slideWidth + 50) - 50, 1 - width), y = max(rng.integer(below: slideHeight + 50) - 50, 1 - height)
                let a = try windowed.readRegion(level0Origin: (x, y), size: (width, height), level: 0)
                let b = try whole.readRegion(level0Origin: (x, y), size: (width, height), level: 0)
                let differing = zip(a.pixels, b.pixels).filter { $0 != $1 }.count
                XCTAssertEqual(differing, 0, "\(path): region \(width)×\(height) at (\(x), \(y))")
                compared += width * height
            }
            XCTAssertGreaterThan(compared, 5_000_000)
        }
    }

    func testTCGAJPEG2000Metadata() throws {
        let slide = try TIFFSlide(path: try SlideFixtures.sample("tcga-cr-7395-01a-01-ts1.svs"))
        XCTAssertEqual(slide.levels.map { [$0.width, $0.height] }, [[4443, 3567], [2221, 1783]])
        XCTAssertEqual(slide.levels[1].downsample, (4443.0 / 2221 + 3567.0 / 1783) / 2, accuracy: 1e-9)
        XCTAssertEqual(slide.levels[0].compression, "JPEG 2000 (RGB)")
        XCTAssertNil(slide.micronsPerPixel, "this sample records no µm/px")
        XCTAssertThrowsError(try slide.readRegion(level0Origin: (0, 0), size: (64, 64), micronsPerPixel: 1)) { error in
            XCTAssertEqual((error as? SlideError)?.kind, .missingResolution)
            XCTAssertTrue(String(describing: error).contains("--mpp-override"))
        }
        let overridden = try TIFFSlide(path: try SlideFixtures.sample("tcga-cr-7395-01a-01-ts1.svs"), micronsPerPixelOverride: 0.25)
        // Level 1 is 0.25 × 2.0009 = 0.5002 µm/px: too coarse for 0.5 (level 0 is read), fine enough for 0.6.
        XCTAssertEqual(try overridden.readRegion(level0Origin: (0, 0), size: (64, 64), micronsPerPixel: 0.5).level, 0)
        let region = try overridden.readRegion(level0Origin: (0, 0), size: (64, 64), micronsPerPixel: 0.6)
        XCTAssertEqual(region.level, 1)
        XCTAssertEqual(region.effectiveMicronsPerPixel, 0.6, accuracy: 1e-9)
    }

    func testCropsMatchAnIndependentDecoder() throws {
        let reference = try SafeTensorsFile(contentsOf: URL(fileURLWithPath: SlideFixtures.fixture("reference_crops.safetensors")))
        let crops = try JSONSerialization.jsonObject(with: Data(try XCTUnwrap(reference.metadata["crops"]).utf8)) as! [[String: Any]]
        var readers: [String: TIFFSlide] = [:]
        for (i, crop) in crops.enumerated() {
            let name = crop["sample"] as! String
            let slide = try readers[name] ?? TIFFSlide(path: try SlideFixtures.sample(name))
            readers[name] = slide
            let level = crop["level"] as! Int
            let (x, y, w, h) = (crop["x"] as! Int, crop["y"] as! Int, crop["width"] as! Int, crop["height"] as! Int)
            let downsample = slide.levels[level].downsample
            // Level pixel (x, y) ↔ level-0 origin x·downsample (rounded down again by the reader).
            let origin = (Int((Double(x) * downsample).rounded(.up)), Int((Double(y) * downsample).rounded(.up)))
            let image = try slide.readRegion(level0Origin: origin, size: (w, h), level: level)
            let expected = SlideFixtures.bytes(try reference.tensor("crop.\(i)"))
            let psnr = SlideFixtures.psnr(image.pixels, expected)
            print("crop \(i) (\(name) level \(level)): PSNR \(psnr) dB")
            XCTAssertGreaterThanOrEqual(psnr, 40, "crop \(i) of \(name)")
        }
    }

    func testRegionsAcrossTheEdgeAreFilledWithBackground() throws {
        let slide = try TIFFSlide(path: try SlideFixtures.sample("cmu_small_region.svs"))
        let image = try slide.readRegion(level0Origin: (2200, 2950), size: (40, 30), level: 0)
        // Columns ≥ 20 and rows ≥ 17 lie outside the 2220×2967 slide.
        XCTAssertEqual([image[x: 30, y: 5, channel: 0], image[x: 30, y: 5, channel: 1], image[x: 30, y: 5, channel: 2]], [255, 255, 255])
        XCTAssertEqual(image[x: 5, y: 25, channel: 1], 255)
        XCTAssertThrowsError(try slide.readRegion(level0Origin: (5000, 0), size: (10, 10), level: 0)) { error in
            XCTAssertEqual((error as? SlideError)?.kind, .invalidRequest)
            XCTAssertTrue(String(describing: error).contains("outside"))
        }
        XCTAssertThrowsError(try slide.readRegion(level0Origin: (0, 0), size: (0, 10), level: 0))
        XCTAssertThrowsError(try slide.readRegion(level0Origin: (0, 0), size: (10, 10), level: 3))
        XCTAssertThrowsError(try slide.readRegion(level0Origin: (0, 0), size: (10, 10), micronsPerPixel: 0.25)) { error in
            XCTAssertTrue(String(describing: error).contains("finer than the slide's level 0"))
        }
    }

    func testReadingByResolutionAveragesTheRightArea() throws {
        let slide = try TIFFSlide(path: try SlideFixtures.sample("cmu_small_region.svs"))
        // 0.998 µm/px is exactly 2 level-0 pixels per output pixel.
        let region = try slide.readRegion(level0Origin: (600, 800), size: (50, 40), micronsPerPixel: 0.998)
        XCTAssertEqual(region.level, 0)
        XCTAssertEqual(region.effectiveMicronsPerPixel, 0.998, accuracy: 1e-9)
        XCTAssertEqual(region.level0Size.width, 100)
        let full = try slide.readRegion(level0Origin: (600, 800), size: (100, 80), level: 0)
        for (x, y) in [(0, 0), (13, 7), (49, 39)] {
            for c in 0..<3 {
                let sum = [(0, 0), (1, 0), (0, 1), (1, 1)].reduce(0) { $0 + Int(full[x: 2 * x + $1.0, y: 2 * y + $1.1, channel: c]) }
                XCTAssertEqual(Double(region.image[x: x, y: y, channel: c]), Double(sum) / 4, accuracy: 0.51, "(\(x), \(y)) channel \(c)")
            }
        }
    }
}

/// One reader shared by several threads gives the same pixels as sequential reads.
final class ConcurrentReadTests: XCTestCase {
    func testConcurrentReadsMatchSequentialReads() throws {
        let path = try SlideFixtures.sample("cmu_small_region.svs")
        // A cache smaller than one region's tiles, so every read decodes.
        let slide = try TIFFSlide(path: path, cache: DecodedTileCache(capacityBytes: 200_000))
        var rng = RandomGenerator(seed: 8)
        let origins = (0..<48).map { _ in (rng.integer(below: 1900), rng.integer(below: 2600)) }
        let sequential = try origins.map { try slide.readRegion(level0Origin: $0, size: (300, 300), level: 0) }
        final class Results: @unchecked Sendable {
            let lock = NSLock()
            var images: [Int: RGBImage] = [:]
            var errors: [String] = []
        }
        let results = Results()
        let shared = slide
        let points = origins
        DispatchQueue.concurrentPerform(iterations: points.count) { i in
            do {
                let image = try shared.readRegion(level0Origin: points[i], size: (300, 300), level: 0)
                results.lock.lock(); results.images[i] = image; results.lock.unlock()
            } catch {
                results.lock.lock(); results.errors.append(String(describing: error)); results.lock.unlock()
            }
        }
        XCTAssertEqual(results.errors, [])
        for i in origins.indices { XCTAssertEqual(results.images[i], sequential[i], "region \(i)") }
    }
}
