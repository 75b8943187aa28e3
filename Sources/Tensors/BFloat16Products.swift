/// Matrix products with bfloat16 operands and float32 accumulation (`GEMMPrecision.bfloat16`).
///
/// Both operands are rounded to bfloat16 once (nearest even), then multiplied:
/// - where the CPU multiplies bfloat16 (`OneDNN.hasBFloat16Hardware`), by oneDNN's matmul on the
///   bfloat16 bits, split over the engine's workers like a float32 product;
/// - elsewhere, by the float32 GEMM on the rounded values, which gives the same numbers (products
///   of bfloat16 values are exact in float32) up to the order of the sums, more slowly than plain
///   float32. Training stages therefore use bfloat16 only where the hardware has it; this path
///   lets the numerics be tested on any CPU.
enum BFloat16Products {
    static func gemm(_ transposeA: Bool, _ transposeB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
                     _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                     _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        // Stored shapes: A is m×k (k×m transposed), B is k×n (n×k transposed); copies are packed.
        let (aRows, aColumns) = transposeA ? (k, m) : (m, k)
        let (bRows, bColumns) = transposeB ? (n, k) : (k, n)
        if OneDNN.hasBFloat16Hardware {
            let a16 = bits(a, rows: aRows, columns: aColumns, leading: lda)
            let b16 = bits(b, rows: bRows, columns: bColumns, leading: ldb)
            a16.withUnsafeBufferPointer { pa in b16.withUnsafeBufferPointer { pb in
                BLAS.split(transposeA, transposeB, m, n, k, alpha, pa.baseAddress!, aColumns, pb.baseAddress!, bColumns,
                           beta, c, ldc) { ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc in
                    let done = OneDNN.matmul(.bfloat16, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
                    precondition(done, "oneDNN has no bfloat16 matmul on a CPU it reports as having one")
                }
            } }
        } else {
            let aRounded = rounded(a, rows: aRows, columns: aColumns, leading: lda)
            let bRounded = rounded(b, rows: bRows, columns: bColumns, leading: ldb)
            BLAS.withPrecision(.float32) {
                BLAS.gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                          a: aRounded, lda: aColumns, b: bRounded, ldb: bColumns, beta: beta, c: c, ldc: ldc)
            }
        }
    }

    /// The rows×columns block of a row-major matrix as packed bfloat16 bits.
    static func bits(_ x: UnsafePointer<Float>, rows: Int, columns: Int, leading: Int) -> [UInt16] {
        [UInt16](unsafeUninitializedCapacity: rows * columns) { out, count in
            for row in 0..<rows {
                StorageConversion.bfloat16s(fromFloats: UnsafeBufferPointer(start: x + row * leading, count: columns),
                                            into: UnsafeMutableBufferPointer(rebasing: out[(row * columns)..<((row + 1) * columns)]))
            }
            count = rows * columns
        }
    }

    /// The same block as floats holding the bfloat16-rounded values.
    static func rounded(_ x: UnsafePointer<Float>, rows: Int, columns: Int, leading: Int) -> [Float] {
        let packed = bits(x, rows: rows, columns: columns, leading: leading)
        return [Float](unsafeUninitializedCapacity: packed.count) { out, count in
            packed.withUnsafeBufferPointer { StorageConversion.floats(fromBFloat16s: $0, into: out) }
            count = packed.count
        }
    }
}
