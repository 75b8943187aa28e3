import Tensors
import XCTest

final class TensorTests: XCTestCase {
    func testShapeStridesAndIndexing() {
        var t = Tensor(shape: [2, 3, 4], scalars: (0..<24).map(Float.init))
        XCTAssertEqual(t.strides, [12, 4, 1])
        XCTAssertEqual(t[1, 2, 3], 23)
        XCTAssertEqual(t.offset(of: [1, 0, 2]), 14)
        t[0, 1, 1] = -1
        XCTAssertEqual(t.scalars[5], -1)
        XCTAssertEqual(Tensor(zeros: []).count, 1)
        XCTAssertEqual(Tensor(zeros: [3, 0]).count, 0)
    }

    func testReshapeIsAViewUntilWritten() {
        let t = Tensor(shape: [4, 6], scalars: (0..<24).map(Float.init))
        var r = t.reshaped([2, -1, 3])
        XCTAssertEqual(r.shape, [2, 4, 3])
        let shared = t.withUnsafeBufferPointer { a in r.withUnsafeBufferPointer { b in a.baseAddress == b.baseAddress } }
        XCTAssertTrue(shared, "reshape copied the storage")
        r[0, 0, 0] = 99
        XCTAssertEqual(t[0, 0], 0, "writing a reshaped copy changed the original")
    }
}

final class StorageConversionTests: XCTestCase {
    func testBytesRoundTripAndClamping() {
        for n in awkwardLengths {
            let bytes = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
            let t = Tensor(bytes: bytes, shape: [n], scale: 1 / 255)
            assertClose(t.scalars, bytes.map { Float($0) / 255 }, absolute: 1e-7)
            XCTAssertEqual((t * 255).bytes(), bytes, "n=\(n)")
        }
        let odd = Tensor(shape: [8], scalars: [-5, -0.4, 0.5, 1.5, 2.5, 254.6, 300, .nan])
        XCTAssertEqual(odd.bytes(), [0, 0, 0, 2, 2, 255, 255, 0])
    }

    func testHalfPrecisionMatchesScalarConversion() {
        for n in awkwardLengths {
            var x = randomArray(n, std: 100, seed: UInt64(n))
            if n > 3 { x[0] = 70000; x[1] = 1e-8; x[2] = -0.0; x[3] = .infinity }
            var halves = [UInt16](repeating: 0, count: n)
            x.withUnsafeBufferPointer { xs in halves.withUnsafeMutableBufferPointer { StorageConversion.halves(fromFloats: xs, into: $0) } }
            XCTAssertEqual(halves, x.map { Float16($0).bitPattern }, "n=\(n)")
            var back = [Float](repeating: 0, count: n)
            halves.withUnsafeBufferPointer { hs in back.withUnsafeMutableBufferPointer { StorageConversion.floats(fromHalves: hs, into: $0) } }
            XCTAssertEqual(back, halves.map { Float(Float16(bitPattern: $0)) })
        }
    }

    func testBFloat16RoundsToNearestEven() {
        // 1 + 2⁻⁸ is halfway between two bfloat16 values: ties go to the even one (1.0).
        let x: [Float] = [1, 1 + 0x1p-8, 1 + 0x1p-8 + 0x1p-12, -2.5, 3.140625, .infinity, .nan]
        var bits = [UInt16](repeating: 0, count: x.count)
        x.withUnsafeBufferPointer { xs in bits.withUnsafeMutableBufferPointer { StorageConversion.bfloat16s(fromFloats: xs, into: $0) } }
        XCTAssertEqual(Array(bits.prefix(6)), [0x3F80, 0x3F80, 0x3F81, 0xC020, 0x4049, 0x7F80])
        var back = [Float](repeating: 0, count: x.count)
        bits.withUnsafeBufferPointer { bs in back.withUnsafeMutableBufferPointer { StorageConversion.floats(fromBFloat16s: bs, into: $0) } }
        XCTAssertTrue(back[6].isNaN)
        XCTAssertEqual(back[3], -2.5)
        for n in awkwardLengths {
            let values = randomArray(n, seed: 77)
            var b = [UInt16](repeating: 0, count: n), r = [Float](repeating: 0, count: n)
            values.withUnsafeBufferPointer { xs in b.withUnsafeMutableBufferPointer { StorageConversion.bfloat16s(fromFloats: xs, into: $0) } }
            b.withUnsafeBufferPointer { bs in r.withUnsafeMutableBufferPointer { StorageConversion.floats(fromBFloat16s: bs, into: $0) } }
            assertClose(r, values, relative: 1.0 / 256, "n=\(n)")
        }
    }
}
