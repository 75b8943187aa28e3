import ArgumentParser
import Dispatch
import Distributed
import Flow
import Foundation
import Stages

/// `ssmamba run FLOW`: runs a flow file.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a flow file: progress while it runs, report.md and report.json in the run folder at the end.",
        discussion: "Every source, stage and parameter is documented in docs/FLOWS.md (`ssmamba flow docs`). Ctrl-C stops cleanly: stages finish, the cache is flushed and the report written; a second Ctrl-C quits at once.")

    @Argument(help: "The flow file (YAML).") var flow: String
    @Option(name: .customLong("set"), parsing: .singleValue, help: "Override a parameter: step.parameter=value (repeatable).") var overrides: [String] = []
    @Option(help: "Run folder (default: the flow's `output`).") var out: String?
    @Flag(help: "Continue the training stages of an interrupted run in the same run folder from their last checkpoints (same flow, same overrides).") var resume = false
    @Flag(help: "Replace an earlier run in the run folder (without it, a folder holding a run is refused).") var overwrite = false

    func run() throws {
        let file = try FlowCommands.load(flow, overrides: overrides)
        try FlowCommands.execute(file, out: out, resume: resume, earlier: overwrite ? .replace : .refuse)
    }
}

/// Shared by `run` and `cache warm`.
enum FlowCommands {
    static func load(_ path: String, overrides: [String]) throws -> FlowFile {
        do {
            return try FlowRunner.load(path, overrides: overrides)
        } catch let error as FlowFileError {
            throw CommandFailure("the flow file has \(error.issues.count) problem(s):\n" + error.description)
        }
    }

    /// Runs `file`; the run folder keeps the resolved flow and how the run was started (`run.json`).
    static func execute(_ file: FlowFile, out: String?, resume: Bool = false, earlier: EarlierRun) throws {
        // Under mpirun/srun: a rank that fails ends the others (they would wait for it in the next
        // collective); one that succeeds leaves MPI cleanly.
        let world = Communicator.world
        do {
            try executeOnThisProcess(file, out: out, resume: resume, earlier: earlier)
            world.finish()
        } catch {
            if world.size > 1 {
                FileHandle.standardError.write(Data("rank \(world.rank) of \(world.size): \(error); stopping every rank\n".utf8))
                world.abort(code: 1)
            }
            world.finish()
            throw error
        }
    }

    private static func executeOnThisProcess(_ file: FlowFile, out: String?, resume: Bool, earlier: EarlierRun) throws {
        // Past a file-size limit a write fails (EFBIG, reported like a full disk) instead of killing us.
        signal(SIGXFSZ, SIG_IGN)
        let cancellation = FlowCancellation()
        let interrupts = InterruptHandler(cancellation)
        defer { interrupts.stop() }
        let result: (report: FlowReport, folder: URL)
        do {
            var provenance = RunProvenance(toolVersion: SSMambaVersion.string, commandLine: CommandLine.arguments)
            provenance.flowFile = file.path
            result = try FlowRunner.run(file, runFolder: out.map { URL(fileURLWithPath: $0) }, resume: resume, cancellation: cancellation,
                                        earlier: earlier, provenance: provenance)
        } catch let error as FlowGraphError {
            throw CommandFailure(error.description)
        } catch let error as StageError {
            throw CommandFailure(error.description)
        } catch let error as StepFailure {
            throw CommandFailure(error.description)
        } catch let error as FlowFileError {
            throw CommandFailure("the flow cannot run:\n" + error.description)
        }
        // The last line says how the run ended (rank 0 says it for a run of several processes).
        let report = result.report, path = "\(result.folder.path)/report.md"
        guard Communicator.world.isRoot else {
            if report.status != .completed { throw ExitCode(1) }
            return
        }
        switch report.status {
        case .completed:
            print(report.failures == 0 ? "completed: report \(path)" : "completed with \(report.failures) failed item(s), listed in \(path)")
        case .cancelled:
            print("stopped (\(report.stopReason ?? "cancelled")): report \(path)")
            throw ExitCode(128 + (interrupts.signalNumber ?? SIGINT))
        case .failed:
            print("failed: \(report.stopReason ?? "see the report") — \(report.failures) failed item(s); report \(path)")
            throw ExitCode(1)
        }
    }
}

/// Ctrl-C (SIGINT) and SIGTERM (what Slurm, `docker stop` and `kill` send): the first stops the
/// run cleanly (stages finish, caches flush, training saves its `last` checkpoint, the report is
/// written), the second exits at once. The exit status then says which signal: 130 or 143.
final class InterruptHandler: @unchecked Sendable {
    private var sources: [DispatchSourceSignal] = []
    private let lock = NSLock()
    private var received: Int32?

    init(_ cancellation: FlowCancellation) {
        for (number, name) in [(SIGINT, "interrupted (Ctrl-C)"), (SIGTERM, "terminated (SIGTERM)")] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [unowned self] in
                let earlier = lock.withLock { defer { received = received ?? number }; return received }
                if earlier != nil { exit(128 + number) }
                FileHandle.standardError.write(Data("\n\(name): stopping cleanly (again to quit at once)\n".utf8))
                cancellation.cancel(reason: name)
            }
            source.resume()
            sources.append(source)
        }
    }

    /// The signal that stopped the run, if one did.
    var signalNumber: Int32? { lock.withLock { received } }

    func stop() {
        sources.forEach { $0.cancel() }
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
    }
}
