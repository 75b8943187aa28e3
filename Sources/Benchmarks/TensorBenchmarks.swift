// Micro-benchmarks of the tensor core (not tests): GEMM GFLOP/s for the shapes the model uses and
// the per-element cost of the elementwise and reduction kernels.
//
//     swift build -c release && .build/release/Benchmarks tensor [--quick]
import Foundation
import Randomness
import Tensors

enum TensorBenchmarks {
  static func run(quick: Bool) {
    let repeats = quick ? 3 : 7
    func measure(_ body: () -> Void) -> Timing { Timing.measure(repeats: repeats, body) }

    var rng = RandomGenerator(seed: 1)
    print("OpenBLAS: \(BLAS.configuration)")
    print("oneDNN: \(OneDNN.configuration)")
    print("")
    // ssmamba_tiny at batch 8 (1,568 tokens, dim 192, inner 384, rank 12, state 16): the forward
    // products and the two backward products of each (∂X = ∂Y·W, ∂W = ∂Yᵀ·X).
    print("GEMM (C = op(A)·op(B), row-major)        threads   OpenBLAS GFLOP/s   oneDNN GFLOP/s   oneDNN/OpenBLAS")
    let shapes: [(String, Int, Int, Int, Bool, Bool)] = [
        ("in_proj  1568×768×192", 1568, 768, 192, false, true),
        ("in_proj ∂X 1568×192×768", 1568, 192, 768, false, false),
        ("in_proj ∂W 768×192×1568", 768, 192, 1568, true, false),
        ("out_proj 1568×192×384", 1568, 192, 384, false, true),
        ("out_proj ∂W 192×384×1568", 192, 384, 1568, true, false),
        ("x_proj 1568×44×384", 1568, 44, 384, false, true),
        ("dt_proj 1568×384×12", 1568, 384, 12, false, true),
        ("dt_proj ∂W 384×12×1568", 384, 12, 1568, true, false),
        ("mlp fc1 1568×768×192", 1568, 768, 192, false, true),
        ("square 1024³", 1024, 1024, 1024, false, false),
    ]
    let savedThreads = BLAS.threads, savedLibrary = BLAS.library
    for (name, m, n, k, ta, tb) in shapes {
        let a = Tensor.uniform(ta ? [k, m] : [m, k], using: &rng), b = Tensor.uniform(tb ? [n, k] : [k, n], using: &rng)
        for threads in [1, savedThreads] where threads <= savedThreads {
            BLAS.threads = threads
            var rates: [Double] = []
            for library in GEMMLibrary.allCases {
                BLAS.library = library
                let t = measure { _ = a.matmul(b, transposeSelf: ta, transposeOther: tb) }
                rates.append(2 * Double(m * n * k) / t.median / 1e9)
            }
            print(name.padding(toLength: 41, withPad: " ", startingAt: 0),
                  String(format: "%5d   %16.1f   %14.1f   %15.2f", threads, rates[0], rates[1], rates[1] / rates[0]))
            if threads == savedThreads { break }
        }
    }
    BLAS.library = savedLibrary
    BLAS.threads = savedThreads

    print("")
    print("kernel (one thread, 10 M floats)      ns/element (median, min…max)")
    let count = quick ? 2_000_000 : 10_000_000
    let x = Tensor.normal([count], using: &rng), g = Tensor.normal([count], using: &rng)
    var out = Tensor(zeros: [count])
    func report(_ name: String, _ t: Timing) {
        let scale = 1e9 / Double(count)
        print(name.padding(toLength: 38, withPad: " ", startingAt: 0),
              String(format: "%6.3f (%.3f…%.3f)", t.median * scale, t.low * scale, t.high * scale))
    }
    func unary(_ name: String, _ kernel: (UnsafeBufferPointer<Float>, UnsafeMutableBufferPointer<Float>) -> Void) {
        report(name, measure { x.withUnsafeBufferPointer { xs in out.withUnsafeMutableBufferPointer { kernel(xs, $0) } } })
    }
    func binary(_ name: String, _ kernel: (UnsafeBufferPointer<Float>, UnsafeBufferPointer<Float>, UnsafeMutableBufferPointer<Float>) -> Void) {
        report(name, measure { x.withUnsafeBufferPointer { xs in g.withUnsafeBufferPointer { gs in
            out.withUnsafeMutableBufferPointer { kernel(xs, gs, $0) } } } })
    }
    binary("add", Elementwise.add)
    binary("multiply", Elementwise.multiply)
    unary("exp", Activation.exp)
    unary("sigmoid", Activation.sigmoid)
    unary("silu", Activation.silu)
    binary("silu backward", Activation.siluBackward)
    unary("softplus", Activation.softplus)
    unary("gelu (tanh)", Activation.geluTanh)
    unary("gelu (erf, libm per element)", Activation.geluErf)
    var sink: Float = 0
    report("sum (4×16-lane accumulators)", measure { sink += x.sum() })
    report("sum (naive sequential loop)", measure {
        var s: Float = 0
        x.withUnsafeBufferPointer { for v in $0 { s += v } }
        sink += s
    })
    let rows = count / 192
    let ln = Tensor(shape: [rows, 192], scalars: Array(x.scalars.prefix(rows * 192)))
    let gamma = [Float](repeating: 1, count: 192), beta = [Float](repeating: 0, count: 192)
    var mean = [Float](repeating: 0, count: rows), rstd = [Float](repeating: 0, count: rows)
    report("layer norm forward (width 192)", measure {
        ln.withUnsafeBufferPointer { xs in out.withUnsafeMutableBufferPointer { ys in
            gamma.withUnsafeBufferPointer { gs in beta.withUnsafeBufferPointer { bs in
                mean.withUnsafeMutableBufferPointer { ms in rstd.withUnsafeMutableBufferPointer { rs in
                    LayerNorm.forward(xs, gamma: gs, beta: bs, rows: rows, width: 192,
                                      into: UnsafeMutableBufferPointer(rebasing: ys[0..<(rows * 192)]), mean: ms, inverseStd: rs)
                } }
            } }
        } }
    })
    report("softmax rows of 196", measure {
        let n = (count / 196) * 196
        x.withUnsafeBufferPointer { xs in out.withUnsafeMutableBufferPointer { ys in
            Softmax.forward(UnsafeBufferPointer(rebasing: xs[0..<n]), outer: n / 196, length: 196, inner: 1,
                            into: UnsafeMutableBufferPointer(rebasing: ys[0..<n]))
        } }
    })
    if sink.isNaN { print("") }
  }
}
