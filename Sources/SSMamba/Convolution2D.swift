import Randomness
import Tensors

/// A dense k×k convolution with stride s and padding k/2 on a token grid, PyTorch's
/// `Conv2d(in, out, k, s, k // 2)` (weight (out, in, k, k)): the forward by oneDNN's direct
/// convolution (im2col + GEMM when oneDNN has no kernel for the shape, or for bf16 products), the
/// backward as im2col + GEMM, its column matrix rebuilt from the kept input.
///
/// Tokens are (batch, H·W, in) in raster order (channels last); the output is
/// (batch, H'·W', out) with H' = ⌊(H − 1)/s⌋ + 1. Column rows are (c, ky, kx), the weight's layout,
/// with zeros where the window leaves the grid. Backward: ∂columns = g·W, scattered back onto
/// the grid (col2im, summing where windows overlap); ∂W += gᵀ·columns.
public final class Convolution2D: ParameterOwner, KeepsActivations {
    public let projection: Linear
    public let inChannels: Int, outChannels: Int, kernel: Int, stride: Int
    private var inputSize = (height: 0, width: 0, batch: 0)
    /// The input of the last kept forward when oneDNN computed it: the backward rebuilds the
    /// column matrix from it (nil: the projection kept the columns).
    private var directInput: Tensor?

    public init(_ name: String, inChannels: Int, outChannels: Int, kernel: Int = 3, stride: Int = 1, bias: Bool = true,
                using rng: inout RandomGenerator) {
        precondition(kernel % 2 == 1 && stride >= 1, "convolution kernel must be odd and stride positive")
        (self.inChannels, self.outChannels, self.kernel, self.stride) = (inChannels, outChannels, kernel, stride)
        projection = Linear(name, inFeatures: inChannels * kernel * kernel, outFeatures: outChannels, bias: bias, using: &rng)
        projection.weight.value = projection.weight.value.reshaped([outChannels, inChannels, kernel, kernel])
        projection.weight.gradient = projection.weight.gradient.reshaped([outChannels, inChannels, kernel, kernel])
    }

    public var parameters: [Parameter] { projection.parameters }

    /// The output grid's side for an input side.
    public func outputSide(_ side: Int) -> Int { (side - 1) / stride + 1 }

    /// x: (batch, height·width, in) → (batch, H'·W', out); with `keeping` false nothing is stored for a backward, so threads may run it at once.
    public func forward(_ x: Tensor, height: Int, width: Int, keeping: Bool = true) -> Tensor {
        precondition(x.rank == 3 && x.shape[1] == height * width && x.shape[2] == inChannels,
                     "convolution expects (batch, \(height * width), \(inChannels)), got \(x.shape)")
        if keeping { inputSize = (height, width, x.shape[0]) }
        // fp32 forwards by oneDNN's direct convolution; bf16 products stay on the GEMM path.
        if BLAS.precision == .float32, let direct = directForward(x, height: height, width: width) {
            if keeping {
                directInput = x
                projection.releaseActivations()
            }
            return direct
        }
        if keeping { directInput = nil }
        return projection.forward(columns(x, height: height, width: width), keeping: keeping)
    }

    /// The forward by oneDNN's direct convolution, without a column matrix (ssmamba_r1_tiny's 3×3
    /// convolutions, one thread: ≈ 80 GFLOP/s against ≈ 42–55 for im2col + GEMM); nil when oneDNN
    /// has no kernel for the shape, and the caller uses im2col + GEMM.
    func directForward(_ x: Tensor, height: Int, width: Int) -> Tensor? {
        let batch = x.shape[0]
        var out = Tensor(uninitialized: [batch, outputSide(height) * outputSide(width), outChannels])
        let done = x.withUnsafeBufferPointer { xs in projection.weight.value.withUnsafeBufferPointer { w in
            out.withUnsafeMutableBufferPointer { os in
                withOptionalPointer(projection.bias?.value) { bias in
                    OneDNN.convolution(input: xs.baseAddress!, batch: batch, height: height, width: width, inChannels: inChannels,
                                       weights: w.baseAddress!, bias: bias.map { UnsafePointer($0.base) }, outChannels: outChannels, kernel: kernel, stride: stride,
                                       output: os.baseAddress!)
                }
            }
        } }
        return done ? out : nil
    }

    public func releaseActivations() {
        projection.releaseActivations()
        directInput = nil
    }

    /// Accumulates the weight (and bias) gradients; returns ∂x.
    public func backward(_ g: Tensor) -> Tensor {
        let (height, width, batch) = inputSize
        let gColumns = directInput.map { projection.backward(g, input: columns($0, height: height, width: width)) }
            ?? projection.backward(g)
        var gx = Tensor(zeros: [batch, height * width, inChannels])
        let geometry = geometry(height: height, width: width)
        gColumns.withUnsafeBufferPointer { gc in gx.withUnsafeMutableBufferPointer { gs in
            let (source, target) = (SharedPointer(gc.baseAddress!), SharedPointer(gs.baseAddress!))
            // Windows of one image overlap, images do not: one image per task.
            Parallel.forEach(batch) { b in
                for oy in 0..<geometry.outHeight {
                    for ox in 0..<geometry.outWidth {
                        geometry.forEachTap(b: b, oy: oy, ox: ox) { pixel, column in
                            for c in 0..<geometry.inChannels {
                                target.base[pixel * geometry.inChannels + c] += source.base[column + c * geometry.taps]
                            }
                        }
                    }
                }
            }
        } }
        return gx
    }

    /// im2col: one row of (c, ky, kx) per output cell.
    func columns(_ x: Tensor, height: Int, width: Int) -> Tensor {
        let geometry = geometry(height: height, width: width)
        let batch = x.shape[0]
        var out = Tensor(zeros: [batch, geometry.outHeight * geometry.outWidth, inChannels * geometry.taps])
        x.withUnsafeBufferPointer { xs in out.withUnsafeMutableBufferPointer { os in
            let (source, target) = (SharedPointer(xs.baseAddress!), SharedPointer(os.baseAddress!))
            Parallel.forEach(batch * geometry.outHeight) { item in
                let (b, oy) = (item / geometry.outHeight, item % geometry.outHeight)
                for ox in 0..<geometry.outWidth {
                    geometry.forEachTap(b: b, oy: oy, ox: ox) { pixel, column in
                        for c in 0..<geometry.inChannels {
                            target.base[column + c * geometry.taps] = source.base[pixel * geometry.inChannels + c]
                        }
                    }
                }
            }
        } }
        return out
    }

    /// The sizes of a call on a height × width grid.
    func geometry(height: Int, width: Int) -> Geometry {
        Geometry(inChannels: inChannels, kernel: kernel, stride: stride, height: height, width: width,
                 outHeight: outputSide(height), outWidth: outputSide(width))
    }

    /// Sizes of one convolution call.
    struct Geometry: Sendable {
        let inChannels, kernel, stride, height, width, outHeight, outWidth: Int
        var taps: Int { kernel * kernel }

        /// Calls `body(inputPixel, columnOffset)` for every tap of output cell (oy, ox) of image b
        /// that falls inside the grid: the input pixel's index (b·H·W + iy·W + ix) and the offset
        /// of that tap's c = 0 entry in the column matrix (later channels every k² entries).
        @inline(__always)
        func forEachTap(b: Int, oy: Int, ox: Int, _ body: (Int, Int) -> Void) {
            let half = kernel / 2
            let row = ((b * outHeight + oy) * outWidth + ox) * inChannels * taps
            for ky in 0..<kernel {
                let iy = oy * stride - half + ky
                guard iy >= 0 && iy < height else { continue }
                for kx in 0..<kernel {
                    let ix = ox * stride - half + kx
                    guard ix >= 0 && ix < width else { continue }
                    body((b * height + iy) * width + ix, row + ky * kernel + kx)
                }
            }
        }
    }
}
