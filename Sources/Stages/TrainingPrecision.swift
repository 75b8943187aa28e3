import Flow
import Foundation
import Tensors

/// The `precision` parameter of the training stages: `fp32`, or `bf16` (bfloat16 matrix products
/// with float32 accumulation and float32 weights) where the CPU multiplies bfloat16 in hardware.
enum TrainingPrecision {
    static let parameter = ParameterSpec(
        "precision", .choice(GEMMPrecision.allCases.map(\.rawValue)), default: GEMMPrecision.float32.rawValue,
        "matrix products in fp32, or bf16 (bfloat16 operands, float32 sums and weights) on CPUs with AVX-512 BF16 or AMX; elsewhere bf16 trains in fp32 and says so")

    /// The precision a stage trains in: bf16 only where `OneDNN.hasBFloat16Hardware` (without it,
    /// bfloat16 products are emulated and slower than fp32, so the stage says so and uses fp32).
    static func resolve(_ requested: String, stage: String) -> GEMMPrecision {
        guard requested == GEMMPrecision.bfloat16.rawValue else { return .float32 }
        if OneDNN.hasBFloat16Hardware { return .bfloat16 }
        FileHandle.standardError.write(Data(
            "\(stage): warning: precision bf16 needs a CPU with AVX-512 BF16 or AMX (oneDNN sees \(OneDNN.configuration)); training in fp32\n".utf8))
        return .float32
    }
}
