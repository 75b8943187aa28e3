import Foundation
import Randomness
import SSMamba
import Tensors

/// The `ssmamba` executable built beside the test bundle, run as a user would.
enum BuiltTool {
    static var executable: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("ssmamba")
    }

    /// A configured, not yet started process (output discarded unless the caller redirects it).
    static func process(_ arguments: [String], in directory: URL? = nil) -> Process {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = directory }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        return process
    }

    /// Runs to the end; stdout and stderr together.
    static func run(_ arguments: [String], in directory: URL? = nil) throws -> (status: Int32, output: String) {
        let result = try outcome(arguments, in: directory)
        return (result.status, result.output)
    }

    /// What mpirun needs in a container: root allowed (containers and CI run as root), and a remote
    /// launcher that exists (Open MPI refuses to start without ssh or rsh on the PATH even when
    /// every rank is local; `false` is never called for local ranks).
    static let mpirunEnvironment = ["OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1", "OMPI_MCA_plm_rsh_agent": "false"]

    /// `mpirun -np ranks ssmamba ARGS…`, configured and not started (output discarded unless the
    /// caller redirects it); Open MPI is told that root may run it (containers and CI run as root).
    static func mpirunProcess(_ ranks: Int, _ arguments: [String]) -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["mpirun", "--oversubscribe", "-np", "\(ranks)", executable.path] + arguments
        process.environment = ProcessInfo.processInfo.environment.merging(mpirunEnvironment) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        return process
    }

    /// The same, run to the end; its status and output.
    static func mpirun(_ ranks: Int, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = mpirunProcess(ranks, arguments)
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }

    /// The same, and whether the process exited (rather than died on a signal, whose number is then the status).
    static func outcome(_ arguments: [String], in directory: URL? = nil) throws -> (exited: Bool, status: Int32, output: String) {
        let process = process(arguments, in: directory)
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationReason == .exit, process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}

/// A random-weight `ssmamba_micro` classifier checkpoint, for tests about the machinery around a
/// model (memory, files, commands), not its accuracy.
func writeRandomClassifier(classes: [String], to url: URL, seed: UInt64 = 0) throws {
    var rng = RandomGenerator(seed: seed)
    var config = try ModelConfiguration.named("ssmamba_micro")
    config.classes = classes.count
    let model = try Classifier(config: config, using: &rng)
    try Checkpoint(manifest: Checkpoint.Manifest(model: config, notes: ["classes": classes.joined(separator: ",")]), weights: model.stateDictionary())
        .write(to: url)
}
