import CDNNL

/// Matrix products through oneDNN (Debian's `libdnnl`), row-major, on the calling thread.
///
/// `sgemm` is oneDNN's fp32 GEMM: the same contract as `cblas_sgemm` (C ← α·op(A)·op(B) + β·C,
/// `lda`, `ldb`, `ldc` the row strides as stored), its own just-in-time kernels for the CPU it
/// runs on. Debian builds oneDNN on OpenMP; each call is pinned to one OpenMP thread because the
/// engine splits large products over its own workers (as it does for OpenBLAS).
public enum OneDNN {
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
}
