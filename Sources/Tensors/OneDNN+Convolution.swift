import CDNNL
import Dispatch
import Foundation

extension OneDNN {
    /// A k×k convolution with stride s and padding k/2 (PyTorch's `Conv2d(in, out, k, s, k // 2)`)
    /// by oneDNN's direct convolution, for evaluation: input (batch, height, width, in) channels
    /// last, weights (out, in, k, k), optional bias (out), output (batch, H', W', out) with
    /// H' = ⌊(H − 1)/s⌋ + 1. The weights are reordered into the kernel's blocked layout once per
    /// call; the images are split over `BLAS.threads` workers, one oneDNN thread each. Returns
    /// false, computing nothing, when oneDNN has no kernel for the shape.
    public static func convolution(input: UnsafePointer<Float>, batch: Int, height: Int, width: Int, inChannels: Int,
                                   weights: UnsafePointer<Float>, bias: UnsafePointer<Float>?, outChannels: Int,
                                   kernel: Int, stride: Int, output: UnsafeMutablePointer<Float>) -> Bool {
        let workers = max(1, min(BLAS.threads, batch))
        let shape = ConvolutionKey(batch: 0, height: height, width: width, inChannels: inChannels, outChannels: outChannels,
                                   kernel: kernel, stride: stride, bias: bias != nil)
        // Every worker's primitive has the same blocked weight layout (it depends on the channels
        // and the CPU, not the batch): the first one's reorder serves all.
        let batches = (0..<workers).map { batch * ($0 + 1) / workers - batch * $0 / workers }
        var primitives: [Int: Convolution] = [:]
        for count in Set(batches) {
            guard let made = Convolution.cached(shape.with(batch: count)) else { return false }
            primitives[count] = made
        }
        let first = primitives[batches[0]]!
        guard let blocked = first.reorderedWeights(weights) else { return false }
        defer { blocked.deallocate() }
        let (inStride, outStride) = (height * width * inChannels, first.outHeight * first.outWidth * outChannels)
        let shared = ConvolutionCall(input: SharedPointer(input), weights: SharedPointer(UnsafeMutablePointer(blocked)),
                                     bias: bias.map { SharedPointer($0) }, output: SharedPointer(output), primitives: primitives)
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            let start = batch * worker / workers, count = batch * (worker + 1) / workers - start
            guard count > 0 else { return }
            shared.primitives[count]!.run(input: shared.input.base + start * inStride, weights: shared.weights.base,
                                          bias: shared.bias?.base, output: shared.output.base + start * outStride)
        }
        return true
    }

    private struct ConvolutionCall: @unchecked Sendable {
        let input: SharedPointer<Float>, weights: SharedPointer<Float>, bias: SharedPointer<Float>?, output: SharedPointer<Float>
        let primitives: [Int: Convolution]
    }

    struct ConvolutionKey: Hashable, Sendable {
        let batch: Int, height: Int, width: Int, inChannels: Int, outChannels: Int, kernel: Int, stride: Int
        let bias: Bool

        func with(batch: Int) -> ConvolutionKey {
            ConvolutionKey(batch: batch, height: height, width: width, inChannels: inChannels, outChannels: outChannels,
                           kernel: kernel, stride: stride, bias: bias)
        }
    }

    /// One forward-inference convolution primitive and the reorder of plain (out, in, k, k)
    /// weights into the layout it chose.
    final class Convolution: @unchecked Sendable {
        let primitive: dnnl_primitive_t, reorder: dnnl_primitive_t
        let source: dnnl_memory_desc_t, plainWeights: dnnl_memory_desc_t, weights: dnnl_memory_desc_t
        let bias: dnnl_memory_desc_t, destination: dnnl_memory_desc_t
        let outHeight: Int, outWidth: Int

        private static let cache = PrimitiveCache<ConvolutionKey, Convolution> { Convolution($0) }
        static func cached(_ key: ConvolutionKey) -> Convolution? { cache.value(for: key) }

        private init?(_ key: ConvolutionKey) {
            (outHeight, outWidth) = ((key.height - 1) / key.stride + 1, (key.width - 1) / key.stride + 1)
            let engine = Engine.shared.engine
            var source = dnnl_memory_desc_t(), destination = dnnl_memory_desc_t(), plain = dnnl_memory_desc_t()
            var anyWeights = dnnl_memory_desc_t(), bias = dnnl_memory_desc_t()
            let half = Int64(key.kernel / 2)
            // The right padding makes oneDNN's output side ⌊(H + 2·half − k)/s⌋ + 1 equal ⌊(H − 1)/s⌋ + 1.
            let padRight = [Int64((outHeight - 1) * key.stride + key.kernel - key.height) - half,
                            Int64((outWidth - 1) * key.stride + key.kernel - key.width) - half]
            guard dnnl_memory_desc_init_by_tag(&source, 4, [Int64(key.batch), Int64(key.inChannels), Int64(key.height), Int64(key.width)], dnnl_f32, dnnl_nhwc) == dnnl_success,
                  dnnl_memory_desc_init_by_tag(&destination, 4, [Int64(key.batch), Int64(key.outChannels), Int64(outHeight), Int64(outWidth)], dnnl_f32, dnnl_nhwc) == dnnl_success,
                  dnnl_memory_desc_init_by_tag(&plain, 4, [Int64(key.outChannels), Int64(key.inChannels), Int64(key.kernel), Int64(key.kernel)], dnnl_f32, dnnl_oihw) == dnnl_success,
                  dnnl_memory_desc_init_by_tag(&anyWeights, 4, [Int64(key.outChannels), Int64(key.inChannels), Int64(key.kernel), Int64(key.kernel)], dnnl_f32, dnnl_format_tag_any) == dnnl_success,
                  dnnl_memory_desc_init_by_tag(&bias, 1, [Int64(key.outChannels)], dnnl_f32, dnnl_a) == dnnl_success
            else { return nil }
            var desc = dnnl_convolution_desc_t()
            let created = withUnsafePointer(to: bias) { biasPointer in
                dnnl_convolution_forward_desc_init(&desc, dnnl_forward_inference, dnnl_convolution_direct, &source, &anyWeights,
                                                   key.bias ? biasPointer : nil, &destination, [Int64(key.stride), Int64(key.stride)],
                                                   [half, half], padRight)
            }
            guard created == dnnl_success else { return nil }
            var descriptor: dnnl_primitive_desc_t?
            guard dnnl_primitive_desc_create(&descriptor, &desc, nil, engine, nil) == dnnl_success, let descriptor else { return nil }
            defer { dnnl_primitive_desc_destroy(descriptor) }
            guard let chosen = dnnl_primitive_desc_query_md(descriptor, dnnl_query_weights_md, 0)?.pointee else { return nil }
            var primitive: dnnl_primitive_t?
            guard dnnl_primitive_create(&primitive, descriptor) == dnnl_success, let primitive else { return nil }
            var reorderDescriptor: dnnl_primitive_desc_t?
            guard withUnsafePointer(to: chosen, { dnnl_reorder_primitive_desc_create(&reorderDescriptor, &plain, engine, $0, engine, nil) }) == dnnl_success,
                  let reorderDescriptor else { return nil }
            defer { dnnl_primitive_desc_destroy(reorderDescriptor) }
            var reorder: dnnl_primitive_t?
            guard dnnl_primitive_create(&reorder, reorderDescriptor) == dnnl_success, let reorder else { return nil }
            (self.primitive, self.reorder) = (primitive, reorder)
            (self.source, self.plainWeights, self.weights, self.bias, self.destination) = (source, plain, chosen, bias, destination)
        }

        /// The weights in the primitive's layout, in a new buffer the caller deallocates.
        func reorderedWeights(_ plain: UnsafePointer<Float>) -> UnsafeMutablePointer<Float>? {
            let bytes = withUnsafePointer(to: weights) { dnnl_memory_desc_get_size($0) }
            let blocked = UnsafeMutablePointer<Float>.allocate(capacity: (bytes + 3) / 4)
            let ok = execute(reorder, [(DNNL_ARG_FROM, plainWeights, UnsafeMutableRawPointer(mutating: plain)),
                                       (DNNL_ARG_TO, weights, UnsafeMutableRawPointer(blocked))])
            guard ok else { blocked.deallocate(); return nil }
            return blocked
        }

        func run(input: UnsafePointer<Float>, weights blocked: UnsafePointer<Float>, bias values: UnsafePointer<Float>?,
                 output: UnsafeMutablePointer<Float>) {
            var arguments: [(Int32, dnnl_memory_desc_t, UnsafeMutableRawPointer)] = [
                (DNNL_ARG_SRC, source, UnsafeMutableRawPointer(mutating: input)),
                (DNNL_ARG_WEIGHTS, weights, UnsafeMutableRawPointer(mutating: blocked)),
                (DNNL_ARG_DST, destination, UnsafeMutableRawPointer(output)),
            ]
            if let values { arguments.append((DNNL_ARG_BIAS, bias, UnsafeMutableRawPointer(mutating: values))) }
            // The shapes were accepted when the primitive was made; a failure here is out of memory or a bug.
            precondition(execute(primitive, arguments), "oneDNN convolution failed")
        }
    }
}
