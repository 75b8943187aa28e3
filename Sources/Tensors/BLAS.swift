import CBLAS

/// Matrix products through OpenBLAS's `cblas_sgemm`, row-major.
///
/// C ← α·op(A)·op(B) + β·C with op(A) of shape m×k and op(B) of shape k×n; `lda`, `ldb`, `ldc` are
/// the row strides of A, B and C as stored (before the transpose).
public enum BLAS {
    /// Threads OpenBLAS uses for one call. Set it to 1 when several tasks call GEMM at once, so
    /// BLAS threads and pipeline tasks do not oversubscribe the cores.
    public static var threads: Int {
        get { Int(openblas_get_num_threads()) }
        set { openblas_set_num_threads(Int32(max(1, newValue))) }
    }

    /// OpenBLAS's build configuration and the core type its kernels were chosen for.
    public static var configuration: String {
        let config = openblas_get_config().map { String(cString: $0) } ?? "unknown"
        let core = openblas_get_corename().map { String(cString: $0) } ?? "unknown"
        return "\(config) (core: \(core))"
    }

    public static func gemm(transposeA: Bool = false, transposeB: Bool = false, m: Int, n: Int, k: Int,
                            alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                            b: UnsafePointer<Float>, ldb: Int,
                            beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        guard m > 0 && n > 0 else { return }
        cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// `batch` independent products; matrix i of each operand starts `stride…·i` elements after
    /// the first (a stride of 0 reuses one matrix for every batch item).
    public static func gemmBatched(transposeA: Bool = false, transposeB: Bool = false, batch: Int,
                                   m: Int, n: Int, k: Int, alpha: Float = 1,
                                   a: UnsafePointer<Float>, lda: Int, strideA: Int,
                                   b: UnsafePointer<Float>, ldb: Int, strideB: Int,
                                   beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int, strideC: Int) {
        for i in 0..<batch {
            gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                 a: a + i * strideA, lda: lda, b: b + i * strideB, ldb: ldb, beta: beta,
                 c: c + i * strideC, ldc: ldc)
        }
    }
}

extension Tensor {
    /// Matrix product of the last two axes; leading axes are batch axes and must match, or one
    /// side is a plain matrix shared by every batch item.
    public func matmul(_ other: Tensor, transposeSelf: Bool = false, transposeOther: Bool = false) -> Tensor {
        precondition(rank >= 2 && other.rank >= 2, "matmul needs matrices, got \(shape) and \(other.shape)")
        let (rowsA, colsA) = (shape[rank - 2], shape[rank - 1])
        let (rowsB, colsB) = (other.shape[other.rank - 2], other.shape[other.rank - 1])
        let (m, k) = transposeSelf ? (colsA, rowsA) : (rowsA, colsA)
        let (kB, n) = transposeOther ? (colsB, rowsB) : (rowsB, colsB)
        precondition(k == kB, "inner extents differ: \(shape) × \(other.shape)")
        let batchA = Array(shape.dropLast(2)), batchB = Array(other.shape.dropLast(2))
        precondition(batchA == batchB || batchA.isEmpty || batchB.isEmpty,
                     "batch axes differ: \(shape) × \(other.shape)")
        let batchShape = batchA.isEmpty ? batchB : batchA
        let batch = Tensor.count(of: batchShape)
        var result = Tensor(zeros: batchShape + [m, n])
        withUnsafeBufferPointer { a in
            other.withUnsafeBufferPointer { b in
                result.withUnsafeMutableBufferPointer { c in
                    guard let pa = a.baseAddress, let pb = b.baseAddress, let pc = c.baseAddress else { return }
                    BLAS.gemmBatched(transposeA: transposeSelf, transposeB: transposeOther, batch: batch,
                                     m: m, n: n, k: k, a: pa, lda: colsA, strideA: batchA.isEmpty ? 0 : rowsA * colsA,
                                     b: pb, ldb: colsB, strideB: batchB.isEmpty ? 0 : rowsB * colsB,
                                     c: pc, ldc: n, strideC: m * n)
                }
            }
        }
        return result
    }
}
