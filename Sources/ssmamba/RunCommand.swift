import ArgumentParser
import Dispatch
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

    func run() throws {
        let file = try FlowCommands.load(flow, overrides: overrides)
        try FlowCommands.execute(file, out: out, resume: resume)
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

    static func execute(_ file: FlowFile, out: String?, resume: Bool = false) throws {
        // Past a file-size limit a write fails (EFBIG, reported like a full disk) instead of killing us.
        signal(SIGXFSZ, SIG_IGN)
        let cancellation = FlowCancellation()
        let interrupts = InterruptHandler(cancellation)
        defer { interrupts.stop() }
        let result: (report: FlowReport, folder: URL)
        do {
            result = try FlowRunner.run(file, runFolder: out.map { URL(fileURLWithPath: $0) }, resume: resume, cancellation: cancellation)
        } catch let error as FlowGraphError {
            throw CommandFailure(error.description)
        } catch let error as StageError {
            throw CommandFailure(error.description)
        }
        print("report: \(result.folder.path)/report.md")
        switch result.report.status {
        case .completed: return
        case .cancelled: throw ExitCode(130)
        case .failed: throw ExitCode(1)
        }
    }
}

/// Ctrl-C: the first stops the run cleanly, the second exits at once.
final class InterruptHandler: @unchecked Sendable {
    private let source: DispatchSourceSignal
    private let lock = NSLock()
    private var interrupted = false

    init(_ cancellation: FlowCancellation) {
        signal(SIGINT, SIG_IGN)
        source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler { [unowned self] in
            let again = lock.withLock { defer { interrupted = true }; return interrupted }
            if again { exit(130) }
            FileHandle.standardError.write(Data("\ninterrupted: stopping cleanly (Ctrl-C again to quit at once)\n".utf8))
            cancellation.cancel(reason: "interrupted (Ctrl-C)")
        }
        source.resume()
    }

    func stop() {
        source.cancel()
        signal(SIGINT, SIG_DFL)
    }
}
