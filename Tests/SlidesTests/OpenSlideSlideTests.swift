import Foundation
import Slides
import XCTest

/// The OpenSlide-backed reader: a Hamamatsu VMS slide (a non-TIFF vendor format: an index file,
/// JPEG stripes with restart markers, a map image and a macro image, built from the real H&E crop
/// by `make samples`), and the real Aperio slides read by both readers.
final class OpenSlideSlideTests: XCTestCase {
    func vms() throws -> String { try SlideFixtures.sample("hamamatsu-vms/hgsc_nest.vms") }

    func testVMSOpensThroughOpenSlideWithItsLevelsResolutionAndMacro() throws {
        let slide = try Slide.open(try vms())
        XCTAssertTrue(slide is OpenSlideSlide, "a VMS slide is read through OpenSlide")
        XCTAssertEqual(slide.vendor, "hamamatsu")
        XCTAssertEqual(slide.levels[0].width, 1280)
        XCTAssertEqual(slide.levels[0].height, 1280)
        // OpenSlide derives the lower levels from the stripes (scaled JPEG decoding) and the map.
        XCTAssertEqual(slide.levels.map(\.downsample), [1, 2, 4, 8, 16, 32])
        XCTAssertEqual(slide.levels[0].tileWidth, 64)
        XCTAssertEqual(slide.levels[0].tileHeight, 8)
        XCTAssertEqual(try XCTUnwrap(slide.micronsPerPixel), 0.5, accuracy: 1e-9)  // 640,000 nm over 1280 px
        XCTAssertEqual(slide.objectivePower, 20)
        XCTAssertEqual(slide.associatedImageNames, ["macro"])
        let macro = try slide.associatedImage("macro")
        XCTAssertEqual(macro.width, 375)  // the 1500-px stromal crop at 1:4
        XCTAssertEqual(slide.properties["hamamatsu.SourceLens"], "20")
        XCTAssertThrowsError(try slide.associatedImage("label")) { error in
            XCTAssertTrue(String(describing: error).contains("no associated image 'label'; the slide has macro"), "\(error)")
        }
    }

    /// A level-0 region across the seam of the two stripes holds the pixels of each stripe's JPEG
    /// (decoded here by the image reader, libjpeg-turbo both times), and what lies beyond the slide
    /// is white.
    func testRegionsAcrossTheStripesMatchTheStripesDecodedDirectly() throws {
        let path = try vms()
        let slide = try OpenSlideSlide(path: path)
        let folder = (path as NSString).deletingLastPathComponent
        let left = try ImageFile.read(folder + "/hgsc_nest_x0.jpg"), right = try ImageFile.read(folder + "/hgsc_nest_x1.jpg")
        let region = try slide.readRegion(level0Origin: (600, 300), size: (80, 50), level: 0)
        var worst = 0, total = 0
        for y in 0..<50 { for x in 0..<80 {
            let sx = 600 + x, sy = 300 + y
            let stripe = sx < 640 ? left : right, column = sx < 640 ? sx : sx - 640
            for c in 0..<3 {
                let d = abs(Int(region.pixels[(y * 80 + x) * 3 + c]) - Int(stripe.pixels[(sy * 640 + column) * 3 + c]))
                worst = max(worst, d); total += d
            }
        } }
        // OpenSlide decodes each restart interval on its own; the colour conversion is the same.
        XCTAssertLessThanOrEqual(worst, 2, "largest channel difference")
        XCTAssertLessThan(Double(total) / Double(80 * 50 * 3), 0.5)

        let outside = try slide.readRegion(level0Origin: (1270, 1270), size: (20, 20), level: 0)
        XCTAssertEqual(Array(outside.pixels[((19 * 20) + 19) * 3..<((19 * 20) + 20) * 3]), [255, 255, 255], "beyond the slide is white")
        XCTAssertNotEqual(Array(outside.pixels[0..<3]), [255, 255, 255], "inside is tissue")

        // By resolution: 2 µm/px is level 2 (the 1:4 map), the same field of view.
        let coarse = try slide.readRegion(level0Origin: (0, 0), size: (64, 64), micronsPerPixel: 2)
        XCTAssertEqual(coarse.level, 2)
        XCTAssertEqual(coarse.level0Size.width, 256)
    }

    /// The native reader and OpenSlide decode the same level-0 pixels of the real Aperio slides
    /// (JPEG and JPEG 2000 tiles), and the automatic choice keeps the native reader for them.
    /// (At a level whose downsample is not a whole number the two place the window up to one
    /// pixel apart: OpenSlide translates by the fractional offset, the native reader floors it.)
    func testNativeAndOpenSlideReadTheSameAperioPixels() throws {
        for (name, origin) in [("cmu_small_region.svs", (700, 900)), ("tcga-cr-7395-01a-01-ts1.svs", (1200, 800))] {
            let path = try SlideFixtures.sample(name)
            XCTAssertTrue(try Slide.open(path) is TIFFSlide, "\(name): Aperio stays on the native reader")
            let native = try Slide.open(path, backend: .native), viaOpenSlide = try Slide.open(path, backend: .openslide)
            XCTAssertEqual(viaOpenSlide.vendor, "aperio")
            XCTAssertEqual(native.levels.map(\.width), viaOpenSlide.levels.map(\.width), name)
            XCTAssertEqual(native.levels.map(\.height), viaOpenSlide.levels.map(\.height), name)
            XCTAssertEqual(native.micronsPerPixel, viaOpenSlide.micronsPerPixel, name)
            let a = try native.readRegion(level0Origin: origin, size: (300, 200), level: 0)
            let b = try viaOpenSlide.readRegion(level0Origin: origin, size: (300, 200), level: 0)
            XCTAssertEqual(a.pixels, b.pixels, "\(name): both readers decode the same pixels")
        }
    }

    func testConcurrentReadsAgreeWithOneByOne() throws {
        let slide = try OpenSlideSlide(path: try vms())
        let origins = (0..<16).map { ($0 * 70, $0 * 61) }
        let expected = try origins.map { try slide.readRegion(level0Origin: $0, size: (96, 96), level: 0).pixels }
        let results = Results(count: origins.count)
        DispatchQueue.concurrentPerform(iterations: origins.count * 4) { i in
            let k = i % origins.count
            results.set(k, (try? slide.readRegion(level0Origin: origins[k], size: (96, 96), level: 0).pixels) == expected[k])
        }
        XCTAssertTrue(results.all, "every concurrent read equals the one-by-one read")
    }

    /// The files a slide's pixels come from: a VMS index with the files it names, a MIRAX file
    /// with its data folder's files, any other slide alone.
    func testTheFilesOfMultiFileSlides() throws {
        let vms = try vms()
        XCTAssertEqual(try Slide.open(vms).files.map { ($0 as NSString).lastPathComponent },
                       ["hgsc_nest.vms", "hgsc_nest_macro.jpg", "hgsc_nest_map.jpg", "hgsc_nest_x0.jpg", "hgsc_nest_x1.jpg"])
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mirax-\(UUID())")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("case/sub"), withIntermediateDirectories: true)
        for name in ["case.mrxs", "case/Slidedat.ini", "case/Index.dat", "case/Data0000.dat", "other.txt"] {
            try Data("x".utf8).write(to: folder.appendingPathComponent(name))
        }
        let mrxs = folder.appendingPathComponent("case.mrxs").path
        XCTAssertEqual(SlideFiles.of(path: mrxs, vendor: "mirax").map { String($0.dropFirst(folder.path.count + 1)) },
                       ["case.mrxs", "case/Data0000.dat", "case/Index.dat", "case/Slidedat.ini"])
        XCTAssertEqual(SlideFiles.of(path: mrxs, vendor: "ventana"), [mrxs])
        let aperio = try SlideFixtures.sample("cmu_small_region.svs")
        XCTAssertEqual(try Slide.open(aperio).files, [aperio])
    }

    /// A VMS whose stripe is missing names the slide and says what to check; a file no reader
    /// recognizes says which formats are read.
    func testIncompleteAndUnknownSlidesAreClearErrors() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vms-broken-\(UUID())")
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = ((try vms()) as NSString).deletingLastPathComponent
        try FileManager.default.copyItem(atPath: source, toPath: folder.path)
        try FileManager.default.removeItem(at: folder.appendingPathComponent("hgsc_nest_x1.jpg"))
        let broken = folder.appendingPathComponent("hgsc_nest.vms").path
        XCTAssertThrowsError(try Slide.open(broken)) { error in
            let text = String(describing: error)
            XCTAssertTrue(text.contains(broken) && text.contains("OpenSlide cannot open the slide"), text)
            XCTAssertTrue(text.contains("check that every file of the slide is present"), text)
        }
        let unknown = folder.appendingPathComponent("notes.ndpi")
        try "not a slide".write(to: unknown, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Slide.open(unknown.path)) { error in
            let text = String(describing: error)
            XCTAssertTrue(text.contains(unknown.path) && text.contains("NDPI, VMS, MIRAX"), text)
        }
        XCTAssertThrowsError(try Slide.open(unknown.path, backend: .openslide)) { error in
            XCTAssertTrue(String(describing: error).contains("OpenSlide does not recognize this file's format"), "\(error)")
        }
    }
}

/// Booleans set from several threads.
private final class Results: @unchecked Sendable {
    private var values: [Bool]
    private let lock = NSLock()
    init(count: Int) { values = Array(repeating: true, count: count) }
    func set(_ i: Int, _ ok: Bool) { lock.withLock { values[i] = values[i] && ok } }
    var all: Bool { lock.withLock { values.allSatisfy { $0 } } }
}
