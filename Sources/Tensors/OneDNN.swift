import CDNNL
import Foundation

/// Matrix products through oneDNN (Debian's `libdnnl`), row-major, on the calling thread.
///
/// `sgemm` is oneDNN's fp32 GEMM: the same contract as `cblas_sgemm` (C ← α·op(A)·op(B) + β·C,
/// `lda`, `ldb`, `ldc` the row strides as stored), its own just-in-time kernels for the CPU it
/// runs on. `matmul` is oneDNN's matrix-multiplication primitive for a given operand type
/// (bfloat16 operands with a float32 result where the CPU multiplies bfloat16). Debian builds
/// oneDNN on OpenMP; each call is pinned to one OpenMP thread because the engine splits large
/// products over its own workers (as it does for OpenBLAS).
public enum OneDNN {
    /// Whether this CPU multiplies bfloat16 in hardware: oneDNN's run-time detection (cpuid and
    /// the OS's register state) reports AVX-512 BF16 or AMX. oneDNN also accepts bfloat16 on plain
    /// AVX-512 by emulating it, which is slower than float32, so that does not count.
    public static let hasBFloat16Hardware: Bool = {
        let isa = dnnl_get_effective_cpu_isa()
        return isa == dnnl_cpu_isa_avx512_core_bf16 || isa == dnnl_cpu_isa_avx512_core_amx
    }()

    /// oneDNN's version, e.g. "2.6.3", and the instruction set its kernels use on this CPU.
    public static var configuration: String {
        guard let version = dnnl_version() else { return "unknown" }
        let v = version.pointee
        return "\(v.major).\(v.minor).\(v.patch) (\(instructionSetName(dnnl_get_effective_cpu_isa())))"
    }

    static func instructionSetName(_ isa: dnnl_cpu_isa_t) -> String {
        switch isa {
        case dnnl_cpu_isa_sse41: return "SSE4.1"
        case dnnl_cpu_isa_avx: return "AVX"
        case dnnl_cpu_isa_avx2: return "AVX2"
        case dnnl_cpu_isa_avx512_mic, dnnl_cpu_isa_avx512_mic_4ops: return "AVX-512 (Xeon Phi)"
        case dnnl_cpu_isa_avx512_core: return "AVX-512"
        case dnnl_cpu_isa_avx512_core_vnni: return "AVX-512 VNNI"
        case dnnl_cpu_isa_avx512_core_bf16: return "AVX-512 BF16"
        case dnnl_cpu_isa_avx512_core_amx: return "AVX-512 BF16 + AMX"
        case dnnl_cpu_isa_avx2_vnni: return "AVX2 VNNI"
        default: return "ISA \(isa.rawValue)"
        }
    }

    @inline(__always)
    static func sgemm(_ transposeA: Bool, _ transposeB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
                      _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                      _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        omp_set_num_threads(1)
        let status = dnnl_sgemm(transposeA ? 84 : 78, transposeB ? 84 : 78, Int64(m), Int64(n), Int64(k), alpha,
                                a, Int64(lda), b, Int64(ldb), beta, c, Int64(ldc))
        // Arguments are checked by the callers (shapes, strides); a refusal here is a programming error.
        precondition(status == dnnl_success, "oneDNN sgemm refused \(m)×\(n)×\(k) (status \(status.rawValue))")
    }

    /// The operand types of a matmul primitive.
    public enum OperandType: Sendable { case float32, bfloat16 }

    /// C ← α·op(A)·op(B) + β·C by the matmul primitive, A and B of `type` (floats, or bfloat16
    /// bits), C float32; the `sgemm` contract otherwise. Returns false, computing nothing, when
    /// oneDNN has no kernel for the type on this CPU (bfloat16 before AVX-512).
    @discardableResult
    public static func matmul(_ type: OperandType, _ transposeA: Bool, _ transposeB: Bool, _ m: Int, _ n: Int, _ k: Int,
                              _ alpha: Float, _ a: UnsafeRawPointer, _ lda: Int, _ b: UnsafeRawPointer, _ ldb: Int,
                              _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) -> Bool {
        let key = MatmulKey(type: type, transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                            lda: lda, ldb: ldb, ldc: ldc, alpha: alpha, beta: beta)
        guard let primitive = Matmul.cached(key) else { return false }
        primitive.run(a: a, b: b, c: c)
        return true
    }

    struct MatmulKey: Hashable, Sendable {
        let type: OperandType
        let transposeA: Bool, transposeB: Bool
        let m: Int, n: Int, k: Int, lda: Int, ldb: Int, ldc: Int
        let alpha: Float, beta: Float
    }

    /// One matmul primitive (created once per shape, strides, type and scales; oneDNN primitives
    /// are immutable and may run on several threads at once).
    final class Matmul: @unchecked Sendable {
        let primitive: dnnl_primitive_t
        /// The operands' descriptions (read by every call; never written after `init`).
        let a: dnnl_memory_desc_t, b: dnnl_memory_desc_t, c: dnnl_memory_desc_t

        nonisolated(unsafe) private static var cache: [MatmulKey: Matmul?] = [:]
        private static let lock = NSLock()

        static func cached(_ key: MatmulKey) -> Matmul? {
            lock.lock()
            defer { lock.unlock() }
            if let found = cache[key] { return found }
            let made = Matmul(key)
            cache[key] = made
            return made
        }

        private init?(_ key: MatmulKey) {
            let type = key.type == .bfloat16 ? dnnl_bf16 : dnnl_f32
            // op(A) is m×k: row-major A, or the transpose of a row-major k×m; likewise op(B), and C.
            var a = dnnl_memory_desc_t(), b = dnnl_memory_desc_t(), c = dnnl_memory_desc_t()
            guard describe(&a, rows: key.m, columns: key.k, leading: key.lda, transposed: key.transposeA, type),
                  describe(&b, rows: key.k, columns: key.n, leading: key.ldb, transposed: key.transposeB, type),
                  describe(&c, rows: key.m, columns: key.n, leading: key.ldc, transposed: false, dnnl_f32)
            else { return nil }
            (self.a, self.b, self.c) = (a, b, c)
            var desc = dnnl_matmul_desc_t()
            guard dnnl_matmul_desc_init(&desc, &a, &b, nil, &c) == dnnl_success else { return nil }
            var attributes: dnnl_primitive_attr_t?
            guard dnnl_primitive_attr_create(&attributes) == dnnl_success, let attributes else { return nil }
            defer { dnnl_primitive_attr_destroy(attributes) }
            if key.alpha != 1 {
                var alpha = key.alpha
                guard dnnl_primitive_attr_set_output_scales(attributes, 1, 0, &alpha) == dnnl_success else { return nil }
            }
            if key.beta != 0 {
                var postOps: dnnl_post_ops_t?
                guard dnnl_post_ops_create(&postOps) == dnnl_success, let postOps else { return nil }
                defer { dnnl_post_ops_destroy(postOps) }
                guard dnnl_post_ops_append_sum(postOps, key.beta) == dnnl_success,
                      dnnl_primitive_attr_set_post_ops(attributes, postOps) == dnnl_success else { return nil }
            }
            var primitiveDescriptor: dnnl_primitive_desc_t?
            guard dnnl_primitive_desc_create(&primitiveDescriptor, &desc, attributes, Engine.shared.engine, nil) == dnnl_success,
                  let primitiveDescriptor else { return nil }
            defer { dnnl_primitive_desc_destroy(primitiveDescriptor) }
            var primitive: dnnl_primitive_t?
            guard dnnl_primitive_create(&primitive, primitiveDescriptor) == dnnl_success, let primitive else { return nil }
            self.primitive = primitive
        }

        func run(a pa: UnsafeRawPointer, b pb: UnsafeRawPointer, c pc: UnsafeMutablePointer<Float>) {
            let done = OneDNN.execute(primitive, [(DNNL_ARG_SRC, a, UnsafeMutableRawPointer(mutating: pa)),
                                                  (DNNL_ARG_WEIGHTS, b, UnsafeMutableRawPointer(mutating: pb)),
                                                  (DNNL_ARG_DST, c, UnsafeMutableRawPointer(pc))])
            // Shapes were accepted when the primitive was made; a failure here is out of memory or a bug.
            precondition(done, "oneDNN matmul failed")
        }
    }

    /// The CPU engine every primitive runs on.
    final class Engine: @unchecked Sendable {
        let engine: dnnl_engine_t
        static let shared = Engine()
        private init() {
            var engine: dnnl_engine_t?
            let status = dnnl_engine_create(&engine, dnnl_cpu, 0)
            precondition(status == dnnl_success && engine != nil, "oneDNN: no CPU engine (status \(status.rawValue))")
            self.engine = engine!
        }
    }
}

/// A rows×columns matrix stored row-major with the given leading dimension, or (transposed) the
/// transpose of a columns×rows one.
private func describe(_ desc: inout dnnl_memory_desc_t, rows: Int, columns: Int, leading: Int, transposed: Bool,
                      _ type: dnnl_data_type_t) -> Bool {
    let dims = [Int64(rows), Int64(columns)]
    let strides: [Int64] = transposed ? [1, Int64(leading)] : [Int64(leading), 1]
    return dnnl_memory_desc_init_by_strides(&desc, 2, dims, type, strides) == dnnl_success
}

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

        nonisolated(unsafe) private static var cache: [ConvolutionKey: Convolution?] = [:]
        private static let lock = NSLock()

        static func cached(_ key: ConvolutionKey) -> Convolution? {
            lock.lock()
            defer { lock.unlock() }
            if let found = cache[key] { return found }
            let made = Convolution(key)
            cache[key] = made
            return made
        }

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

    /// Runs `primitive` on one OpenMP thread with memory objects over the given buffers.
    static func execute(_ primitive: dnnl_primitive_t, _ arguments: [(Int32, dnnl_memory_desc_t, UnsafeMutableRawPointer)]) -> Bool {
        omp_set_num_threads(1)
        let engine = Engine.shared.engine
        var memories: [dnnl_memory_t] = []
        defer { for memory in memories { dnnl_memory_destroy(memory) } }
        for (_, desc, pointer) in arguments {
            var memory: dnnl_memory_t?
            guard withUnsafePointer(to: desc, { dnnl_memory_create(&memory, $0, engine, pointer) }) == dnnl_success, let memory else { return false }
            memories.append(memory)
        }
        var stream: dnnl_stream_t?
        guard dnnl_stream_create(&stream, engine, dnnl_stream_default_flags.rawValue) == dnnl_success, let stream else { return false }
        defer { dnnl_stream_destroy(stream) }
        var executed = zip(arguments, memories).map { dnnl_exec_arg_t(arg: $0.0.0, memory: $0.1) }
        return dnnl_primitive_execute(primitive, stream, Int32(executed.count), &executed) == dnnl_success
            && dnnl_stream_wait(stream) == dnnl_success
    }
}
