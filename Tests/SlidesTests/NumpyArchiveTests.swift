import Foundation
import Slides
import XCTest

/// .npy and .npz files written by NumPy (scripts/reference/make_numpy_fixtures.py).
final class NumpyArchiveTests: XCTestCase {
    let expected: [Int32] = (0..<35).map { Int32(($0 * 37) % 1000 - 100) }

    func testNumPyFilesReadBack() throws {
        for (name, member) in [("numpy_int32.npy", nil), ("numpy_masks.npz", nil), ("numpy_masks.npz", "nuc_raster"), ("numpy_stored.npz", nil)] as [(String, String?)] {
            let array = try NumpyArray.read(SlideFixtures.fixture(name), member: member)
            XCTAssertEqual(array.height, 5, name)
            XCTAssertEqual(array.width, 7, name)
            XCTAssertEqual(array.values, expected, name)
        }
        let transposed = try NumpyArray.read(SlideFixtures.fixture("numpy_masks.npz"), member: "other")
        XCTAssertEqual(transposed.height, 7)
        XCTAssertEqual(transposed[0, 1], expected[1])
        let bytes = try NumpyArray.read(SlideFixtures.fixture("numpy_uint8.npy"))
        XCTAssertEqual(bytes.values, expected.map { Int32(($0 % 256 + 256) % 256) })
    }

    func testBadFilesGiveClearErrors() throws {
        XCTAssertThrowsError(try NumpyArray.read(SlideFixtures.fixture("numpy_masks.npz"), member: "missing")) { error in
            XCTAssertTrue("\(error)".contains("nuc_raster.npy, other.npy"), "\(error)")
        }
        let junk = FileManager.default.temporaryDirectory.appendingPathComponent("junk-\(UUID()).npz")
        defer { try? FileManager.default.removeItem(at: junk) }
        var data = try Data(contentsOf: URL(fileURLWithPath: SlideFixtures.fixture("numpy_masks.npz")))
        data.replaceSubrange(60..<90, with: [UInt8](repeating: 0xAB, count: 30))
        try data.write(to: junk)
        XCTAssertThrowsError(try NumpyArray.read(junk.path)) { error in
            XCTAssertTrue("\(error)".contains(junk.path), "\(error)")
        }
        XCTAssertThrowsError(try NumpyArray.read(SlideFixtures.fixture("pyramid_chain.tif")))
        // Shapes whose product overflows, or exceeds the file: a typed error, not a trap.
        for shape in ["(4294967296, 4294967296)", "(9223372036854775807, 2)", "(100000, 100000)"] {
            var header = "{'descr': '<i4', 'fortran_order': False, 'shape': \(shape), }"
            while (10 + header.count + 1) % 64 != 0 { header += " " }
            header += "\n"
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("hostile-\(UUID()).npy")
            defer { try? FileManager.default.removeItem(at: file) }
            try (Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.count & 0xFF), UInt8(header.count >> 8)]) + Data(header.utf8) + Data(count: 64)).write(to: file)
            XCTAssertThrowsError(try NumpyArray.read(file.path)) { error in
                XCTAssertEqual((error as? SlideError)?.kind, .corruptData, "\(shape): \(error)")
                XCTAssertTrue("\(error)".contains(file.path), "\(error)")
            }
        }
    }
}
