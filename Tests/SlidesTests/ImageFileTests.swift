import Foundation
import Randomness
import Slides
import Tensors
import XCTest

/// ROI image files (JPEG, PNG, TIFF) against Pillow's decoding of the real samples.
final class ImageFileTests: XCTestCase {
    func testRealJPEGAndPNGMatchPillow() throws {
        let reference = try SafeTensorsFile(contentsOf: URL(fileURLWithPath: SlideFixtures.fixture("roi_images.safetensors")))
        let table = try JSONSerialization.jsonObject(with: Data(try XCTUnwrap(reference.metadata["images"]).utf8)) as! [String: [String: Any]]
        for (name, facts) in table {
            let image = try ImageFile.read(try SlideFixtures.sample(name))
            XCTAssertEqual(image.width, facts["image_width"] as? Int, name)
            XCTAssertEqual(image.height, facts["image_height"] as? Int, name)
            let (x, y, w, h) = (facts["x"] as! Int, facts["y"] as! Int, facts["width"] as! Int, facts["height"] as! Int)
            var crop = [UInt8]()
            for row in y..<(y + h) { crop += image.pixels[((row * image.width + x) * 3)..<((row * image.width + x + w) * 3)] }
            let psnr = SlideFixtures.psnr(crop, SlideFixtures.bytes(try reference.tensor("\(name).crop")))
            print("\(name): crop PSNR \(psnr) dB against Pillow")
            XCTAssertGreaterThanOrEqual(psnr, 40, name)
            let means = facts["mean"] as! [Double]
            for c in 0..<3 {
                var total = 0.0
                for p in 0..<(image.width * image.height) { total += Double(image.pixels[3 * p + c]) }
                XCTAssertEqual(total / Double(image.width * image.height), means[c], accuracy: 0.5, "\(name) channel \(c) mean")
            }
        }
    }

    func testPNGWriterRoundTripAndTIFFImages() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ssmamba-images-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var rng = RandomGenerator(seed: 4)
        let image = RGBImage(width: 301, height: 77, pixels: (0..<(301 * 77 * 3)).map { _ in UInt8(rng.integer(below: 256)) })
        let url = directory.appendingPathComponent("noise.png")
        try PNGWriter.write(image, to: url)
        XCTAssertEqual(try ImageFile.read(url.path), image, "PNG written here and read back")
        let tiff = try ImageFile.read(SlideFixtures.fixture("pyramid_chain.tif"))
        XCTAssertEqual([tiff.width, tiff.height], [512, 384])
    }

    /// PNGs are compressed (filtered rows, zlib): a real H&E tile round-trips exactly at well under
    /// its raw size (it was stored uncompressed: 49 KB for a 128² tile, against PIL's 30 KB), and
    /// one-pixel and flat images are fine too.
    func testPNGsAreCompressedAndExact() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ssmamba-png-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let nest = try ImageFile.read(try SlideFixtures.sample("hgsc_nest.jpg"))
        var pixels = [UInt8]()
        for row in 100..<228 { pixels += nest.pixels[((row * nest.width + 100) * 3)..<((row * nest.width + 228) * 3)] }
        let cases = [("tile", RGBImage(width: 128, height: 128, pixels: pixels)), ("dot", RGBImage(width: 1, height: 1, pixels: [9, 200, 33])),
                     ("flat", RGBImage(width: 300, height: 20, pixels: [UInt8](repeating: 240, count: 300 * 20 * 3)))]
        for (name, image) in cases {
            let url = directory.appendingPathComponent("\(name).png")
            try PNGWriter.write(image, to: url)
            XCTAssertEqual(try ImageFile.read(url.path), image, name)
            let size = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int)
            if name == "tile" {
                print("PNG of a real 128² H&E tile: \(size) bytes (raw \(128 * 128 * 3))")
                XCTAssertLessThan(size, 128 * 128 * 3 * 3 / 4, "the tile is compressed")
            }
            if name == "flat" { XCTAssertLessThan(size, 200) }
        }
    }

    func testBadImagesAreClearErrors() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ssmamba-badimages-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let jpeg = [UInt8](try Data(contentsOf: URL(fileURLWithPath: try SlideFixtures.sample("hgsc_nest.jpg"))))
        let cases: [(String, [UInt8], SlideError.Kind)] = [
            ("text.png", Array("hello".utf8), .notSupported),
            ("cut.jpg", Array(jpeg.prefix(600)), .corruptData),
            ("cut.png", [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0], .corruptData),
        ]
        for (name, bytes, kind) in cases {
            let url = directory.appendingPathComponent(name)
            try Data(bytes).write(to: url)
            XCTAssertThrowsError(try ImageFile.read(url.path), name) { error in
                XCTAssertEqual((error as? SlideError)?.kind, kind, "\(name): \(error)")
                XCTAssertTrue(String(describing: error).contains(url.path))
            }
        }
        // Mutations of a real JPEG header: errors or images, never a crash.
        var rng = RandomGenerator(seed: 5)
        let head = Array(jpeg.prefix(20_000))
        for i in 0..<300 {
            var bytes = head
            for _ in 0..<(1 + rng.integer(below: 6)) { bytes[2 + rng.integer(below: 600)] = UInt8(rng.integer(below: 256)) }
            let url = directory.appendingPathComponent("m\(i % 4).jpg")
            try Data(bytes).write(to: url)
            _ = try? ImageFile.read(url.path)
        }
    }
}
