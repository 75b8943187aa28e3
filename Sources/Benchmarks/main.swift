// Benchmarks (never part of the tests).
//
//     .build/release/Benchmarks tensor [--quick]
//     .build/release/Benchmarks model --model ssmamba_tiny --batch 8 --mode infer|train [--steps 5]
//     .build/release/Benchmarks regions [--quick]      (random region reads; tifffile and OpenSlide)
//     .build/release/Benchmarks cache [--quick]        (tile cache writes and model-ready reads; Python lmdb + numpy)
//     .build/release/Benchmarks stain [--quick]        (Macenko, Reinhard, Vahadane; torchstain, numpy, staintools)
//     .build/release/Benchmarks pipeline [--quick]     (slide → tissue → tiles → Macenko → cache; the Python pipeline)
//     .build/release/Benchmarks model-suite [--quick] [--model ssmamba_tiny]   (ours and PyTorch, side by side)
import Foundation

let arguments = Array(CommandLine.arguments.dropFirst())
func option(_ name: String, default value: String) -> String {
    guard let i = arguments.firstIndex(of: name), i + 1 < arguments.count else { return value }
    return arguments[i + 1]
}

switch arguments.first {
case "tensor":
    TensorBenchmarks.run(quick: arguments.contains("--quick"))
case "regions":
    do { try RegionBenchmarks.run(quick: arguments.contains("--quick")) } catch {
        FileHandle.standardError.write(Data("Benchmarks: \(error)\n".utf8))
        exit(1)
    }
case "cache":
    do { try CacheBenchmarks.run(quick: arguments.contains("--quick")) } catch {
        FileHandle.standardError.write(Data("Benchmarks: \(error)\n".utf8))
        exit(1)
    }
case "stain":
    do { try StainBenchmarks.run(quick: arguments.contains("--quick")) } catch {
        FileHandle.standardError.write(Data("Benchmarks: \(error)\n".utf8))
        exit(1)
    }
case "pipeline":
    do { try PipelineBenchmarks.run(quick: arguments.contains("--quick")) } catch {
        FileHandle.standardError.write(Data("Benchmarks: \(error)\n".utf8))
        exit(1)
    }
case "scan":
    ScanBenchmarks.run(quick: arguments.contains("--quick"))
case "model-suite":
    do {
        try ModelSuite.run(quick: arguments.contains("--quick"), model: option("--model", default: "ssmamba_tiny"))
    } catch {
        FileHandle.standardError.write(Data("Benchmarks: \(error)\n".utf8))
        exit(1)
    }
case "model":
    do {
        try ModelBenchmarks.runCase(model: option("--model", default: "ssmamba_tiny"), batch: Int(option("--batch", default: "8")) ?? 8,
                                    training: option("--mode", default: "infer") == "train", steps: Int(option("--steps", default: "5")) ?? 5)
    } catch {
        FileHandle.standardError.write(Data("Benchmarks: \(error)\n".utf8))
        exit(1)
    }
default:
    FileHandle.standardError.write(Data("usage: Benchmarks tensor [--quick] | model --model NAME --batch N --mode infer|train [--steps N] | model-suite [--quick] [--model NAME]\n".utf8))
    exit(2)
}
