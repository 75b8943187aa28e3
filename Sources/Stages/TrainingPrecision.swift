import Flow
import Foundation
import Tensors

/// The `precision` parameter of the training stages: `fp32`, or `bf16` (bfloat16 matrix products
/// with float32 accumulation and float32 weights) where the CPU multiplies bfloat16 in hardware.
enum TrainingPrecision {
    static let parameter = ParameterSpec(
        "precision", .choice(GEMMPrecision.allCases.map(\.rawValue)), default: GEMMPrecision.float32.rawValue,
        "matrix products in fp32, or bf16 (bfloat16 operands, float32 sums and weights) on CPUs with AVX-512 BF16 or AMX; elsewhere bf16 trains in fp32 and says so")

    /// The precision a stage trains in (`GEMMPrecision.onThisCPU`); when that is not the one
    /// asked for, the stage says so.
    static func resolve(_ asked: GEMMPrecision, stage: String) -> GEMMPrecision {
        let used = asked.onThisCPU
        if used == asked { return used }
        FileHandle.standardError.write(Data(
            "\(stage): warning: precision bf16 needs a CPU with AVX-512 BF16 or AMX (oneDNN sees \(OneDNN.configuration)); training in fp32\n".utf8))
        return used
    }
}
