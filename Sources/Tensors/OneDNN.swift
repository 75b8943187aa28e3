import CDNNL
import Foundation

/// Matrix products through oneDNN (Debian's `libdnnl`), row-major, on the calling thread
/// (its convolution: `OneDNN+Convolution.swift`).
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
        let (transposed, plain) = (CChar(UInt8(ascii: "T")), CChar(UInt8(ascii: "N")))
        let status = dnnl_sgemm(transposeA ? transposed : plain, transposeB ? transposed : plain, Int64(m), Int64(n), Int64(k), alpha,
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

        private static let cache = PrimitiveCache<MatmulKey, Matmul> { Matmul($0) }
        static func cached(_ key: MatmulKey) -> Matmul? { cache.value(for: key) }

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

/// oneDNN objects made once per key and shared by every thread (a key oneDNN refused is
/// remembered as nil, so it is not asked again).
final class PrimitiveCache<Key: Hashable, Value>: @unchecked Sendable {
    private var entries: [Key: Value?] = [:]
    private let lock = NSLock()
    private let make: (Key) -> Value?

    init(_ make: @escaping (Key) -> Value?) { self.make = make }

    func value(for key: Key) -> Value? {
        lock.withLock {
            if let found = entries[key] { return found }
            let made = make(key)
            entries[key] = made
            return made
        }
    }
}

extension OneDNN {
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
