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

    /// Runs `body` once with each GEMM library, then restores the one in use.
    func forEachLibrary(_ body: (GEMMLibrary) -> Void) {
        let saved = BLAS.library
        defer { BLAS.library = saved }
        for library in GEMMLibrary.allCases {
            BLAS.library = library
            body(library)
        }
    }

    func testEveryTransposeOnOddShapes() {
        forEachLibrary { library in
            var rng = RandomGenerator(seed: 9)
            for (m, n, k) in [(1, 1, 1), (3, 5, 7), (17, 1, 33), (65, 31, 2), (4, 6, 0)] {
                for ta in [false, true] { for tb in [false, true] {
                    let a = Tensor.normal(ta ? [k, m] : [m, k], using: &rng)
                    let b = Tensor.normal(tb ? [n, k] : [k, n], using: &rng)
                    let c = a.matmul(b, transposeSelf: ta, transposeOther: tb)
                    XCTAssertEqual(c.shape, [m, n])
                    assertClose(c.scalars, naive(a, b, ta, tb), absolute: 1e-4, relative: 1e-5, "\(library) m\(m) n\(n) k\(k) ta\(ta) tb\(tb)")
                } }
            }
        }
    }

    /// Products above the parallel threshold are split over workers by rows (m ≥ n) or columns;
    /// C is written into a wider matrix (ldc > n) whose other columns must stay untouched.
    func testLargeProductsSplitOverWorkersIntoAStridedResult() {
        let saved = BLAS.threads
        defer { BLAS.threads = saved }
        BLAS.threads = 3
        var rng = RandomGenerator(seed: 11)
        forEachLibrary { library in
            for (m, n, k) in [(301, 97, 120), (97, 301, 120)] {
                for ta in [false, true] { for tb in [false, true] {
                    let a = Tensor.normal(ta ? [k, m] : [m, k], using: &rng)
                    let b = Tensor.normal(tb ? [n, k] : [k, n], using: &rng)
                    let ldc = n + 5
                    var c = [Float](repeating: 7, count: m * ldc)
                    a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
                        BLAS.gemm(transposeA: ta, transposeB: tb, m: m, n: n, k: k, a: pa.baseAddress!, lda: ta ? m : k,
                                  b: pb.baseAddress!, ldb: tb ? k : n, c: pc.baseAddress!, ldc: ldc)
                    } } }
                    let expected = naive(a, b, ta, tb)
                    let product = (0..<m).flatMap { i in c[(i * ldc)..<(i * ldc + n)] }
                    assertClose(product, expected, absolute: 1e-3, relative: 1e-5, "\(library) m\(m) n\(n) k\(k) ta\(ta) tb\(tb)")
                    XCTAssertTrue((0..<m).allSatisfy { i in c[(i * ldc + n)..<(i * ldc + ldc)].allSatisfy { $0 == 7 } },
                                  "\(library): a column beyond n was written")
                } }
            }
        }
    }

    func testStridedBatchesAndSharedOperand() {
        forEachLibrary { library in
            var rng = RandomGenerator(seed: 10)
            let a = Tensor.normal([4, 3, 5], using: &rng)
            let b = Tensor.normal([4, 5, 2], using: &rng)
            let shared = Tensor.normal([5, 2], using: &rng)
            let c = a.matmul(b), d = a.matmul(shared)
            XCTAssertEqual(c.shape, [4, 3, 2])
            for batch in 0..<4 {
                let ai = Tensor(shape: [3, 5], scalars: Array(a.scalars[(batch * 15)..<((batch + 1) * 15)]))
                let bi = Tensor(shape: [5, 2], scalars: Array(b.scalars[(batch * 10)..<((batch + 1) * 10)]))
                assertClose(Array(c.scalars[(batch * 6)..<((batch + 1) * 6)]), naive(ai, bi, false, false), absolute: 1e-5, "\(library)")
                assertClose(Array(d.scalars[(batch * 6)..<((batch + 1) * 6)]), naive(ai, shared, false, false), absolute: 1e-5, "\(library)")
            }
        }
    }

    func testAlphaBetaAccumulate() {
        forEachLibrary { library in
            var c: [Float] = [1, 2, 3, 4]
            let a: [Float] = [1, 2, 3, 4], b: [Float] = [1, 0, 0, 1]
            a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
                BLAS.gemm(m: 2, n: 2, k: 2, alpha: 2, a: pa.baseAddress!, lda: 2, b: pb.baseAddress!, ldb: 2,
                          beta: 1, c: pc.baseAddress!, ldc: 2)
            } } }
            XCTAssertEqual(c, [3, 6, 9, 12], "\(library)")
            // An empty sum leaves β·C.
            c.withUnsafeMutableBufferPointer { pc in
                BLAS.gemm(m: 2, n: 2, k: 0, a: a, lda: 1, b: b, ldb: 2, beta: 0.5, c: pc.baseAddress!, ldc: 2)
            }
            XCTAssertEqual(c, [1.5, 3, 4.5, 6], "\(library)")
        }
    }

    func testThreadControl() {
        let before = BLAS.threads
        BLAS.threads = 1
        XCTAssertEqual(BLAS.threads, 1)
        BLAS.threads = before
        XCTAssertEqual(BLAS.threads, before)
    }
}
