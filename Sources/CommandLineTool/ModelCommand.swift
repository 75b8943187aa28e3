import ArgumentParser
import Flow
import Foundation
import Randomness
import SSMamba
import Tensors

/// `ssmamba model list|info`: the registry of named configurations and what each costs.
struct ModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "List the named model configurations, or show one's parameters and cost.",
        subcommands: [List.self, Info.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the named configurations.")
        func run() {
            for name in ModelConfiguration.registry.keys.sorted() {
                let c = ModelConfiguration.registry[name]!
                let shape = c.layout == .hierarchical
                    ? "hierarchical (R1), widths \(c.levelDepths.indices.map { String(c.dim << $0) }.joined(separator: "-")), depths \(c.levelDepths.map(String.init).joined(separator: "-")), \(c.imageSize) px"
                    : "dim \(c.dim), depth \(c.depth), \(c.imageSize) px / patch \(c.patchSize), attention in the last \(c.attentionBlocks)"
                print("\(name.padding(toLength: 16, withPad: " ", startingAt: 0)) \(shape)")
            }
        }
    }

    struct Info: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Parameters, FLOPs per image and the full configuration of a named model.")
        @Argument(help: "A configuration name from `ssmamba model list`.") var name: String
        @Option(help: "Number of classes of the head.") var classes: Int?
        @Flag(help: "Print JSON instead of text.") var json = false

        func run() throws {
            var config: ModelConfiguration
            do { config = try ModelConfiguration.named(name) } catch { throw ValidationError(String(describing: error)) }
            if let classes { config.classes = classes }
            var rng = RandomGenerator(seed: 0)
            let model = try Classifier(config: config, using: &rng)
            let cost = ModelCost(config: config)
            let masked = ModelCost(config: config, tokens: config.tokens / 4)
            if json {
                let configText = String(decoding: try JSONEncoder.runFiles.encode(config), as: UTF8.self)
                print("""
                {"name": "\(name)", "parameters": \(model.parameterCount), "forward_gflops_per_image": \(cost.forwardFLOPs / 1e9),
                 "training_gflops_per_image": \(cost.trainingFLOPs / 1e9), "gemm_fraction": \(cost.gemmFLOPs / cost.forwardFLOPs),
                 "masked_25_percent_forward_gflops": \(masked.forwardFLOPs / 1e9), "config": \(configText)}
                """)
                return
            }
            print("\(name): \(model.parameterCount.formatted()) parameters")
            print(String(format: "forward  %.2f GFLOP per image (GEMM %.0f %%, scans %.0f %%, other %.0f %%)", cost.forwardFLOPs / 1e9,
                         100 * cost.gemmFLOPs / cost.forwardFLOPs, 100 * cost.scanFLOPs / cost.forwardFLOPs, 100 * cost.otherFLOPs / cost.forwardFLOPs))
            if config.layout == .hierarchical {
                print(String(format: "training %.2f GFLOP per image (3× forward); no masked pretraining for this layout", cost.trainingFLOPs / 1e9))
                let widths = config.levelDepths.indices.map { String(config.dim << $0) }.joined(separator: "-")
                print("hierarchical (R1): widths \(widths), depths \(config.levelDepths.map(String.init).joined(separator: "-")), "
                      + "\(config.convolutionLevels) convolutional levels, attention blocks per level \(config.levelAttentionBlocks), "
                      + "output \(config.outputSide)×\(config.outputSide)×\(config.outputWidth)")
            } else {
                print(String(format: "training %.2f GFLOP per image (3× forward); masked pretraining (25 %% visible) forward %.2f GFLOP",
                             cost.trainingFLOPs / 1e9, masked.forwardFLOPs / 1e9))
                print("tokens \(config.gridSide)×\(config.gridSide), scan directions \(config.directions.joined(separator: " ")), local kernels \(config.localKernels)")
            }
        }
    }
}
