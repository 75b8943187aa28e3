import Randomness
import Tensors
import XCTest

final class BLASTests: XCTestCase {
    func naive(_ a: Tensor, _ b: Tensor, _ ta: Bool, _ tb: Bool) -> [Float] {
        let m = ta ? a.shape[1] : a.shape[0], k = ta ? a.shape[0] : a.shape[1]
        let n = tb ? b.shape[0] : b.shape[1]
        var c = [Float](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n {
            var s: Double = 0
            for p in 0..<k { s += Double(ta ? a[p, i] : a[i, p]) * Double(tb ? b[j, p] : b[p, j]) }
            c[i * n + j] = Float(s)
        } }
        return c
    }

    func testEveryTransposeOnOddShapes() {
        var rng = RandomGenerator(seed: 9)
        for (m, n, k) in [(1, 1, 1), (3, 5, 7), (17, 1, 33), (65, 31, 2), (4, 6, 0)] {
            for ta in [false, true] { for tb in [false, true] {
                let a = Tensor.normal(ta ? [k, m] : [m, k], using: &rng)
                let b = Tensor.normal(tb ? [n, k] : [k, n], using: &rng)
                let c = a.matmul(b, transposeSelf: ta, transposeOther: tb)
                XCTAssertEqual(c.shape, [m, n])
                assertClose(c.scalars, naive(a, b, ta, tb), absolute: 1e-4, relative: 1e-5, "m\(m) n\(n) k\(k) ta\(ta) tb\(tb)")
            } }
        }
    }

    func testStridedBatchesAndSharedOperand() {
        var rng = RandomGenerator(seed: 10)
        let a = Tensor.normal([4, 3, 5], using: &rng)
        let b = Tensor.normal([4, 5, 2], using: &rng)
        let shared = Tensor.normal([5, 2], using: &rng)
        let c = a.matmul(b), d = a.matmul(shared)
        XCTAssertEqual(c.shape, [4, 3, 2])
        for batch in 0..<4 {
            let ai = Tensor(shape: [3, 5], scalars: Array(a.scalars[(batch * 15)..<((batch + 1) * 15)]))
            let bi = Tensor(shape: [5, 2], scalars: Array(b.scalars[(batch * 10)..<((batch + 1) * 10)]))
            assertClose(Array(c.scalars[(batch * 6)..<((batch + 1) * 6)]), naive(ai, bi, false, false), absolute: 1e-5)
            assertClose(Array(d.scalars[(batch * 6)..<((batch + 1) * 6)]), naive(ai, shared, false, false), absolute: 1e-5)
        }
    }

    func testAlphaBetaAccumulate() {
        var c: [Float] = [1, 2, 3, 4]
        let a: [Float] = [1, 2, 3, 4], b: [Float] = [1, 0, 0, 1]
        a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
            BLAS.gemm(m: 2, n: 2, k: 2, alpha: 2, a: pa.baseAddress!, lda: 2, b: pb.baseAddress!, ldb: 2,
                      beta: 1, c: pc.baseAddress!, ldc: 2)
        } } }
        XCTAssertEqual(c, [3, 6, 9, 12])
    }

    func testThreadControl() {
        let before = BLAS.threads
        BLAS.threads = 1
        XCTAssertEqual(BLAS.threads, 1)
        BLAS.threads = before
        XCTAssertEqual(BLAS.threads, before)
    }
}
