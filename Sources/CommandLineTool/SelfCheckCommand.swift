import ArgumentParser
import CLMDB
import COpenJPEG
import CTIFF
import CZstd
import Foundation
import Randomness
import Tensors

/// `ssmamba selfcheck`: the native libraries this build linked, and the tensor core checked
/// against plain scalar references on this machine.
struct SelfCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selfcheck",
        abstract: "Check the native libraries and the tensor kernels on this machine.",
        discussion: "Prints the linked library versions, then compares GEMM, the activations, softmax, "
            + "LayerNorm and the storage conversions with scalar references, and times a GEMM. "
            + "Exits non-zero if any check fails.")

    func run() throws {
        print("ssmamba \(SSMambaVersion.string)")
        print("libraries:")
        print("  OpenBLAS  \(BLAS.configuration), \(BLAS.threads) thread(s)")
        print("  zstd      \(String(cString: ZSTD_versionString()))")
        print("  LMDB      \(String(cString: mdb_version(nil, nil, nil)))")
        print("  libtiff   \(String(cString: TIFFGetVersion()).split(separator: "\n").first ?? "")")
        print("  OpenJPEG  \(String(cString: opj_version()))")

        var rng = RandomGenerator(seed: 2026)
        var failures = 0
        print("kernels (largest error against a scalar reference):")
        for check in TensorSelfCheck.all(using: &rng) {
            let ok = check.error <= check.tolerance
            if !ok { failures += 1 }
            let error = String(format: "%.2e", check.error)
            print("  \(ok ? "ok  " : "FAIL") \(check.name.padding(toLength: 34, withPad: " ", startingAt: 0)) \(error) (≤ \(check.tolerance))")
        }
        let rate = TensorSelfCheck.gemmRate(size: 512)
        print(String(format: "GEMM 512×512×512: %.1f GFLOP/s with %d BLAS thread(s)", rate, BLAS.threads))
        if failures > 0 {
            throw CommandFailure("\(failures) kernel check(s) failed: this build or its BLAS computes wrong results on this machine")
        }
        print("all kernel checks passed")
    }
}
