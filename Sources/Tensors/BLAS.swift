import CBLAS
import Dispatch
import Foundation

/// Matrix products, row-major, through OpenBLAS's `cblas_sgemm` or oneDNN's `dnnl_sgemm`
/// (`BLAS.library`).
///
/// C ← α·op(A)·op(B) + β·C with op(A) of shape m×k and op(B) of shape k×n; `lda`, `ldb`, `ldc` are
/// the row strides of A, B and C as stored (before the transpose).
///
/// Threading: OpenBLAS itself runs single-threaded; a large product is split into `threads`
/// blocks of rows (or columns) computed by Dispatch workers. OpenBLAS's own threads spin and
/// yield between calls, which starved the engine's other kernels (measured: ~20 % of a model
/// step in `sched_yield`); Dispatch workers park instead.
public enum BLAS {
    nonisolated(unsafe) private static var workers = max(1, ProcessInfo.processInfo.activeProcessorCount)
    private static let singleThreadedLibrary: Void = { openblas_set_num_threads(1) }()

    /// Workers one GEMM may use (default: every core; at most the calling thread's `workerLimit`,
    /// so 1 inside `onOneThread`). Set it to 1 when several tasks call GEMM at once, so GEMMs and
    /// pipeline tasks do not oversubscribe the cores.
    public static var threads: Int {
        get { min(workers, workerLimit ?? workers) }
        set { workers = max(1, newValue) }
    }

    /// The library that computes fp32 products: `SSMAMBA_GEMM=openblas|onednn` in the environment,
    /// else oneDNN (measured on an AVX2 EPYC, one thread, `Benchmarks tensor`: as fast or faster on
    /// every forward product of ssmamba_tiny, 1.9× on dt_proj's rank-12 product, within 4 % on the
    /// weight gradients; training +5 %). Both keep the engine's threading; their results differ
    /// only in rounding (the order of the sums).
    nonisolated(unsafe) public static var library: GEMMLibrary = {
        guard let name = ProcessInfo.processInfo.environment["SSMAMBA_GEMM"] else { return .oneDNN }
        guard let chosen = GEMMLibrary(rawValue: name) else {
            FileHandle.standardError.write(Data("warning: SSMAMBA_GEMM=\(name) is neither openblas nor onednn; using onednn\n".utf8))
            return .oneDNN
        }
        return chosen
    }()

    /// Products below this many flops run on one worker (splitting costs more than it saves).
    static let parallelThreshold = 4_000_000

    /// OpenBLAS's build configuration and the core type its kernels were chosen for.
    public static var configuration: String {
        let config = openblas_get_config().map { String(cString: $0) } ?? "unknown"
        let core = openblas_get_corename().map { String(cString: $0) } ?? "unknown"
        return "\(config) (core: \(core))"
    }

    /// C ← α·op(A)·op(B) + β·C in the calling thread's `precision` (float32 unless a caller chose
    /// bfloat16 products with `withPrecision`).
    public static func gemm(transposeA: Bool = false, transposeB: Bool = false, m: Int, n: Int, k: Int,
                            alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                            b: UnsafePointer<Float>, ldb: Int,
                            beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        guard m > 0 && n > 0 else { return }
        if k == 0 {  // an empty sum: C ← β·C (oneDNN refuses the zero strides such operands have)
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
            return
        }
        if precision == .bfloat16 {
            BFloat16Products.gemm(transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
            return
        }
        _ = singleThreadedLibrary
        split(transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, kernel: sgemm)
    }

    /// Splits a product over `threads` workers when it is large enough: blocks of rows of C
    /// (m ≥ n) or of columns, each computed by `kernel` (the `sgemm` contract, with operands of
    /// element type T: floats, or bfloat16 bits).
    static func split<T>(_ transposeA: Bool, _ transposeB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
                         _ a: UnsafePointer<T>, _ lda: Int, _ b: UnsafePointer<T>, _ ldb: Int,
                         _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int,
                         kernel: (Bool, Bool, Int, Int, Int, Float, UnsafePointer<T>, Int, UnsafePointer<T>, Int, Float,
                                  UnsafeMutablePointer<Float>, Int) -> Void) {
        let parts = 2 * m * n * k >= parallelThreshold ? min(threads, max(m, n)) : 1
        if parts <= 1 {
            kernel(transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
            return
        }
        let operands = Operands(a: a, b: b, c: c)
        withoutActuallyEscaping(kernel) { kernel in
            let kernel = UncheckedSendable(kernel)
            if m >= n {
                // Blocks of rows of C: rows of op(A) start at row i of A, or column i when transposed.
                DispatchQueue.concurrentPerform(iterations: parts) { part in
                    let start = m * part / parts, end = m * (part + 1) / parts
                    guard end > start else { return }
                    kernel.value(transposeA, transposeB, end - start, n, k, alpha, operands.a + (transposeA ? start : start * lda), lda,
                                 operands.b, ldb, beta, operands.c + start * ldc, ldc)
                }
            } else {
                // Blocks of columns of C: columns of op(B) start at column j of B, or row j when transposed.
                DispatchQueue.concurrentPerform(iterations: parts) { part in
                    let start = n * part / parts, end = n * (part + 1) / parts
                    guard end > start else { return }
                    kernel.value(transposeA, transposeB, m, end - start, k, alpha, operands.a, lda,
                                 operands.b + (transposeB ? start * ldb : start), ldb, beta, operands.c + start, ldc)
                }
            }
        }
    }

    /// Pointers handed to the workers; each writes a disjoint block of C.
    private struct Operands<T>: @unchecked Sendable {
        let a: UnsafePointer<T>, b: UnsafePointer<T>, c: UnsafeMutablePointer<Float>
    }

    /// A block kernel handed to the workers (it only reads shared state and writes its own block).
    private struct UncheckedSendable<Value>: @unchecked Sendable {
        let value: Value
        init(_ value: Value) { self.value = value }
    }

    @inline(__always)
    private static func sgemm(_ transposeA: Bool, _ transposeB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
                              _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                              _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        if library == .oneDNN {
            OneDNN.sgemm(transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
            return
        }
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

/// A library of fp32 matrix products.
public enum GEMMLibrary: String, Sendable, CaseIterable {
    case openBLAS = "openblas"
    case oneDNN = "onednn"
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
