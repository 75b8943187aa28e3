import ArgumentParser
import Tensors

@main
struct SSMambaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ssmamba",
        abstract: "SSMamba: a streaming, cached pipeline for pathology images and the SSMamba model, on CPUs.",
        version: SSMambaVersion.string,
        subcommands: [InspectCommand.self, RegionCommand.self, TissueCommand.self, TilesCommand.self, StainCommand.self, RunCommand.self, EvalCommand.self, FlowCommand.self, CacheCommand.self, ModelCommand.self, SelfCheckCommand.self])

    /// Sets the process's one memory policy, then runs the command line.
    static func main() {
        MemoryPolicy.keepFreedMemory()
        main(nil)
    }
}
