import Foundation
import Randomness
import Tensors
import XCTest

final class BFloat16ProductsTests: XCTestCase {
    /// x rounded to bfloat16 (nearest even), as a float.
    func rounded(_ x: [Float]) -> [Float] {
        var bits = [UInt16](repeating: 0, count: x.count), back = [Float](repeating: 0, count: x.count)
        x.withUnsafeBufferPointer { xs in bits.withUnsafeMutableBufferPointer { StorageConversion.bfloat16s(fromFloats: xs, into: $0) } }
        bits.withUnsafeBufferPointer { bs in back.withUnsafeMutableBufferPointer { StorageConversion.floats(fromBFloat16s: bs, into: $0) } }
        return back
    }

    /// α·op(A)·op(B) + β·C in double precision; A, B, C row-major with the given leading dimensions.
    func definition(_ ta: Bool, _ tb: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float, _ a: [Float], _ lda: Int,
                    _ b: [Float], _ ldb: Int, _ beta: Float, _ c: [Float], _ ldc: Int) -> [Float] {
        var out = c
        for i in 0..<m { for j in 0..<n {
            var sum: Double = 0
            for p in 0..<k { sum += Double(ta ? a[p * lda + i] : a[i * lda + p]) * Double(tb ? b[j * ldb + p] : b[p * ldb + j]) }
            out[i * ldc + j] = Float(Double(alpha) * sum + Double(beta) * Double(c[i * ldc + j]))
        } }
        return out
    }

    /// oneDNN's matmul primitive (the one the bfloat16 path runs) with float32 operands, which
    /// every CPU has: every transpose, padded leading dimensions, α and β.
    func testOneDNNMatmulPrimitiveMatchesTheDefinition() {
        var rng = RandomGenerator(seed: 31)
        for (m, n, k) in [(1, 1, 1), (7, 5, 3), (33, 17, 65)] {
            for ta in [false, true] { for tb in [false, true] { for (alpha, beta) in [(Float(1), Float(0)), (0.5, 1), (2, -0.25)] {
                let lda = (ta ? m : k) + 2, ldb = (tb ? k : n) + 1, ldc = n + 3
                let a = Tensor.normal([(ta ? k : m) * lda], using: &rng).scalars
                let b = Tensor.normal([(tb ? n : k) * ldb], using: &rng).scalars
                var c = Tensor.normal([m * ldc], using: &rng).scalars
                let expected = definition(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
                let done = a.withUnsafeBytes { pa in b.withUnsafeBytes { pb in c.withUnsafeMutableBufferPointer { pc in
                    OneDNN.matmul(.float32, ta, tb, m, n, k, alpha, pa.baseAddress!, lda, pb.baseAddress!, ldb, beta, pc.baseAddress!, ldc)
                } } }
                XCTAssertTrue(done, "oneDNN has float32 matmul on every CPU")
                assertClose(c, expected, absolute: 1e-4, relative: 1e-5, "m\(m) n\(n) k\(k) ta\(ta) tb\(tb) α\(alpha) β\(beta)")
            } } }
        }
    }

    /// In bfloat16 precision a product is the exact product of the bfloat16-rounded operands,
    /// summed in float32, whichever path runs it (oneDNN on bfloat16 hardware, else the float32
    /// GEMM on rounded values); large enough to be split over workers, with every transpose.
    func testBFloat16ProductsAreProductsOfRoundedOperands() {
        var rng = RandomGenerator(seed: 32)
        let saved = BLAS.threads
        defer { BLAS.threads = saved }
        BLAS.threads = 2
        for (m, n, k) in [(5, 3, 9), (260, 70, 130)] {
            for ta in [false, true] { for tb in [false, true] {
                let a = Tensor.normal(ta ? [k, m] : [m, k], using: &rng), b = Tensor.normal(tb ? [n, k] : [k, n], using: &rng)
                let product = BLAS.withPrecision(.bfloat16) { a.matmul(b, transposeSelf: ta, transposeOther: tb) }
                let float32 = a.matmul(b, transposeSelf: ta, transposeOther: tb)
                let zeros = [Float](repeating: 0, count: m * n)
                let ofRounded = definition(ta, tb, m, n, k, 1, rounded(a.scalars), ta ? m : k, rounded(b.scalars), tb ? k : n, 0, zeros, n)
                let exact = definition(ta, tb, m, n, k, 1, a.scalars, ta ? m : k, b.scalars, tb ? k : n, 0, zeros, n)
                assertClose(product.scalars, ofRounded, absolute: 1e-4, relative: 1e-5, "m\(m) n\(n) k\(k) ta\(ta) tb\(tb)")
                // The rounding shows: bfloat16 keeps 8 significant bits (relative error up to 2⁻⁹ per operand).
                let worst = zip(product.scalars, exact).map { abs($0 - $1) }.max()!
                XCTAssertGreaterThan(worst, 1e-3, "bfloat16 operands must be rounded")
                assertClose(float32.scalars, exact, absolute: 1e-4, relative: 1e-5, "float32 outside withPrecision")
            } }
        }
    }

    /// Where the CPU multiplies bfloat16, oneDNN's bfloat16 matmul on the bits gives the products
    /// of the rounded values (skipped elsewhere: oneDNN has no bfloat16 kernel without AVX-512).
    func testOneDNNBFloat16MatmulOnHardware() throws {
        try XCTSkipUnless(OneDNN.hasBFloat16Hardware, "no AVX-512 BF16 or AMX on this CPU (oneDNN: \(OneDNN.configuration))")
        var rng = RandomGenerator(seed: 33)
        let (m, n, k) = (37, 29, 70)
        let a = Tensor.normal([m, k], using: &rng).scalars, b = Tensor.normal([n, k], using: &rng).scalars
        var a16 = [UInt16](repeating: 0, count: a.count), b16 = [UInt16](repeating: 0, count: b.count)
        a.withUnsafeBufferPointer { x in a16.withUnsafeMutableBufferPointer { StorageConversion.bfloat16s(fromFloats: x, into: $0) } }
        b.withUnsafeBufferPointer { x in b16.withUnsafeMutableBufferPointer { StorageConversion.bfloat16s(fromFloats: x, into: $0) } }
        var c = [Float](repeating: 1, count: m * n)
        let done = a16.withUnsafeBytes { pa in b16.withUnsafeBytes { pb in c.withUnsafeMutableBufferPointer { pc in
            OneDNN.matmul(.bfloat16, false, true, m, n, k, 1, pa.baseAddress!, k, pb.baseAddress!, k, 1, pc.baseAddress!, n)
        } } }
        XCTAssertTrue(done)
        let expected = definition(false, true, m, n, k, 1, rounded(a), k, rounded(b), k, 1, [Float](repeating: 1, count: m * n), n)
        assertClose(c, expected, absolute: 1e-4, relative: 1e-5)
    }

    /// The precision belongs to the thread that set it, for the duration of `withPrecision`.
    func testPrecisionIsPerThreadAndScoped() {
        XCTAssertEqual(BLAS.precision, .float32)
        BLAS.withPrecision(.bfloat16) {
            XCTAssertEqual(BLAS.precision, .bfloat16)
            final class Seen: @unchecked Sendable { var precision: GEMMPrecision? }  // written before the semaphore is signalled
            let seen = Seen(), done = DispatchSemaphore(value: 0)
            Thread {
                seen.precision = BLAS.precision
                done.signal()
            }.start()
            done.wait()
            XCTAssertEqual(seen.precision, .float32, "another thread keeps float32")
            BLAS.withPrecision(.float32) { XCTAssertEqual(BLAS.precision, .float32) }
            XCTAssertEqual(BLAS.precision, .bfloat16, "an inner scope restores the outer precision")
        }
        XCTAssertEqual(BLAS.precision, .float32)
    }

    /// oneDNN's direct convolution (the evaluation forward of the model's convolutions) against
    /// the definition: channels-last input, (out, in, k, k) weights, padding k/2, output side
    /// ⌊(H − 1)/s⌋ + 1; odd sides, stride 2, with and without bias, images split over workers.
    func testOneDNNConvolutionMatchesTheDefinition() {
        var rng = RandomGenerator(seed: 34)
        let saved = BLAS.threads
        defer { BLAS.threads = saved }
        for (batch, height, width, inChannels, outChannels, kernel, stride, hasBias, threads) in
            [(2, 7, 5, 3, 4, 3, 1, true, 1), (3, 8, 6, 5, 2, 3, 2, false, 2), (5, 9, 9, 8, 8, 5, 1, true, 3), (4, 7, 7, 6, 10, 3, 2, true, 2)] {
            BLAS.threads = threads
            let x = Tensor.normal([batch * height * width * inChannels], using: &rng).scalars
            let w = Tensor.normal([outChannels * inChannels * kernel * kernel], using: &rng).scalars
            let bias = Tensor.normal([outChannels], using: &rng).scalars
            let (outHeight, outWidth) = ((height - 1) / stride + 1, (width - 1) / stride + 1)
            var expected = [Float](repeating: 0, count: batch * outHeight * outWidth * outChannels)
            for b in 0..<batch { for oy in 0..<outHeight { for ox in 0..<outWidth { for o in 0..<outChannels {
                var sum = hasBias ? Double(bias[o]) : 0
                for c in 0..<inChannels { for ky in 0..<kernel { for kx in 0..<kernel {
                    let (iy, ix) = (oy * stride - kernel / 2 + ky, ox * stride - kernel / 2 + kx)
                    guard iy >= 0 && iy < height && ix >= 0 && ix < width else { continue }
                    sum += Double(x[((b * height + iy) * width + ix) * inChannels + c]) * Double(w[((o * inChannels + c) * kernel + ky) * kernel + kx])
                } } }
                expected[((b * outHeight + oy) * outWidth + ox) * outChannels + o] = Float(sum)
            } } } }
            var out = [Float](repeating: .nan, count: expected.count)
            let done = x.withUnsafeBufferPointer { xs in w.withUnsafeBufferPointer { ws in bias.withUnsafeBufferPointer { bs in
                out.withUnsafeMutableBufferPointer { os in
                    OneDNN.convolution(input: xs.baseAddress!, batch: batch, height: height, width: width, inChannels: inChannels,
                                       weights: ws.baseAddress!, bias: hasBias ? bs.baseAddress! : nil, outChannels: outChannels,
                                       kernel: kernel, stride: stride, output: os.baseAddress!)
                }
            } } }
            XCTAssertTrue(done, "oneDNN convolves in float32 on every CPU")
            assertClose(out, expected, absolute: 1e-4, relative: 1e-5, "b\(batch) \(height)×\(width) \(inChannels)→\(outChannels) k\(kernel) s\(stride)")
        }
    }
}
