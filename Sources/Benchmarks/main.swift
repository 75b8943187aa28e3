// Benchmarks (never part of the tests).
//
//     .build/release/Benchmarks tensor [--quick]
//     .build/release/Benchmarks model --model ssmamba_tiny --batch 8 --mode infer|train [--steps 5] [--replicas N]
//     .build/release/Benchmarks regions [--quick]      (random region reads; tifffile and OpenSlide)
//     .build/release/Benchmarks cache [--quick]        (tile cache writes and model-ready reads; Python lmdb + numpy)
//     .build/release/Benchmarks stream [--quick]       (training fed from the cache vs from memory; PyTorch DataLoader over py-lmdb)
//     .build/release/Benchmarks stain [--quick]        (Macenko, Reinhard, Vahadane; torchstain, numpy, staintools)
//     .build/release/Benchmarks pipeline [--quick]     (slide → tissue → tiles → Macenko → cache; the Python pipeline)
//     .build/release/Benchmarks model-suite [--quick] [--model ssmamba_tiny]   (ours and PyTorch, side by side)
import Foundation
import Tensors

MemoryPolicy.keepFreedMemory()  // the process-wide policy, as in the `ssmamba` command
let arguments = Array(CommandLine.arguments.dropFirst())
func option(_ name: String, default value: String) -> String {
    guard let i = arguments.firstIndex(of: name), i + 1 < arguments.count else { return value }
    return arguments[i + 1]
}

let quick = arguments.contains("--quick")

/// Runs a suite; a failure is printed and ends the process with status 1.
func suite(_ body: () throws -> Void) {
    do { try body() } catch {
        FileHandle.standardError.write(Data("Benchmarks: \(error)\n".utf8))
        exit(1)
    }
}

switch arguments.first {
case "tensor": TensorBenchmarks.run(quick: quick)
case "scan": ScanBenchmarks.run(quick: quick)
case "regions": suite { try RegionBenchmarks.run(quick: quick) }
case "cache": suite { try CacheBenchmarks.run(quick: quick) }
case "stream": suite { try StreamBenchmarks.run(quick: quick) }
case "stain": suite { try StainBenchmarks.run(quick: quick) }
case "pipeline": suite { try PipelineBenchmarks.run(quick: quick) }
case "model-suite": suite { try ModelSuite.run(quick: quick, model: option("--model", default: "ssmamba_tiny")) }
case "model":
    guard let precision = GEMMPrecision(rawValue: option("--precision", default: "fp32")) else {
        FileHandle.standardError.write(Data("Benchmarks model: --precision must be fp32 or bf16\n".utf8))
        exit(2)
    }
    suite {
        try ModelBenchmarks.runCase(model: option("--model", default: "ssmamba_tiny"), batch: Int(option("--batch", default: "8")) ?? 8,
                                    training: option("--mode", default: "infer") == "train", steps: Int(option("--steps", default: "5")) ?? 5,
                                    precision: precision, replicas: Int(option("--replicas", default: "")))
    }
default:
    FileHandle.standardError.write(Data("usage: Benchmarks tensor|scan|regions|cache|stream|stain|pipeline|model-suite [--quick] | model --model NAME --batch N --mode infer|train [--steps N] [--precision fp32|bf16] [--replicas N]\n".utf8))
    exit(2)
}
