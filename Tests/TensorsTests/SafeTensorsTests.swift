import Foundation
import Randomness
import Tensors
import XCTest

final class SafeTensorsTests: XCTestCase {
    /// The file written by scripts/reference/make_safetensors_fixture.py with Python's safetensors.
    func testReadsAFileWrittenByPythonSafetensors() throws {
        let file = try SafeTensorsFile(contentsOf: fixtureURL("pytorch_dtypes.safetensors"))
        XCTAssertEqual(file.metadata["format"], "pt")
        XCTAssertEqual(Set(file.entries.keys), ["weights.f64", "weights.f32", "weights.f16", "weights.bf16", "pixels.u8", "steps.i64"])

        let f32 = try file.tensor("weights.f32")
        XCTAssertEqual(f32.shape, [2, 3, 4])
        XCTAssertEqual(f32.scalars, (0..<24).map { (Float($0) - 11.5) / 8 })
        XCTAssertEqual(try file.tensor("weights.f64").scalars, (0..<24).map { Float(Double($0) / 3) })
        let f16 = try file.tensor("weights.f16")
        XCTAssertEqual(file.entries["weights.f16"]?.dtype, .float16)
        XCTAssertEqual(f16.shape, [3, 4])
        XCTAssertEqual(f16.scalars, (0..<12).map { (Float($0) - 5) * 0.25 })
        let bf16 = try file.tensor("weights.bf16")
        XCTAssertEqual(file.entries["weights.bf16"]?.dtype, .bfloat16)
        XCTAssertEqual(bf16.scalars, (0..<8).map { (Float($0) + 1) * 1.5 })
        let u8 = try file.tensor("pixels.u8")
        XCTAssertEqual(u8.shape, [2, 2, 6])
        XCTAssertEqual(u8.scalars, (0..<24).map { Float(($0 * 37) % 256) })
        XCTAssertEqual(try file.int64s("steps.i64"), [-3, 0, (1 << 40) + 7])
    }

    func testRoundTripIsBitExact() throws {
        var rng = RandomGenerator(seed: 3)
        var file = SafeTensorsFile()
        file.metadata = ["producer": "ssmamba tests"]
        let weights = Tensor.normal([5, 7], using: &rng)
        file.set("block.0.weight", weights)
        file.set("block.0.half", weights, as: .float16)
        file.set("block.0.brain", weights, as: .bfloat16)
        file.set("pixels", Tensor(shape: [2, 3], scalars: [0, 1, 127, 128, 254, 255]), as: .uint8)
        file.set("step", int64s: [Int64.min, -1, 0, Int64.max], shape: [4])
        file.set("empty", Tensor(zeros: [0, 3]))
        file.set("block.0.double", weights, as: .float64)

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("safetensors-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("model.safetensors")
        try file.write(to: url)
        try file.write(to: url)  // overwriting goes through the same atomic rename

        let bytes = try [UInt8](Data(contentsOf: url))
        XCTAssertEqual(bytes, file.serialized())
        XCTAssertEqual((8 + Int(bytes[0]) + Int(bytes[1]) << 8) % 8, 0, "header must be padded to 8 bytes")
        let read = try SafeTensorsFile(contentsOf: url)
        XCTAssertEqual(read, file)
        XCTAssertEqual(try read.tensor("block.0.weight"), weights)
        XCTAssertEqual(try read.tensor("block.0.double"), weights)
        XCTAssertEqual(try read.int64s("step"), [Int64.min, -1, 0, Int64.max])
        XCTAssertEqual(try read.tensor("empty").shape, [0, 3])
        XCTAssertEqual(read.serialized(), bytes, "re-serialising must reproduce the same bytes")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        XCTAssertEqual(leftovers, ["model.safetensors"], "temporary files left behind")
    }

    func testBadFilesAreClearErrors() throws {
        let good = try [UInt8](Data(contentsOf: fixtureURL("pytorch_dtypes.safetensors")))
        let cases: [(String, [UInt8], String)] = [
            ("short", [1, 2, 3], "too short"),
            ("huge header", [255, 255, 255, 0, 0, 0, 0, 0] + [UInt8](repeating: 32, count: 16), "header length"),
            ("truncated", Array(good.dropLast(10)), "outside"),
            ("not json", [8, 0, 0, 0, 0, 0, 0, 0] + Array("{nojson}".utf8), "not valid JSON"),
        ]
        for (name, bytes, expected) in cases {
            XCTAssertThrowsError(try SafeTensorsFile(bytes: bytes, source: "\(name).safetensors"), name) { error in
                let text = String(describing: error)
                XCTAssertTrue(text.contains("\(name).safetensors") && text.contains(expected), "\(name): \(text)")
            }
        }
        let badType = Array(#"{"w":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}}"#.utf8)
        var bytes = [UInt8(badType.count), 0, 0, 0, 0, 0, 0, 0] + badType
        bytes += [UInt8](repeating: 0, count: 8)
        XCTAssertThrowsError(try SafeTensorsFile(bytes: bytes, source: "i32.safetensors")) { error in
            XCTAssertTrue(String(describing: error).contains("I32"))
        }
        XCTAssertThrowsError(try SafeTensorsFile(contentsOf: URL(fileURLWithPath: "/nonexistent/model.safetensors")))
    }
}
