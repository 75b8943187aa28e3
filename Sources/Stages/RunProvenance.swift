import Flow
import Foundation

/// How a run was made, kept in its run folder: `flow.resolved.yaml` (the flow as it ran, every
/// default filled in and every `--set` applied: `ssmamba run` on it repeats the run) and
/// `run.json` (tool version, command line, flow file, start time, whether it resumed).
public struct RunProvenance: Sendable, Codable {
    public let toolVersion: String
    public let commandLine: [String]
    public var flowFile = ""
    public var started = Date()
    public var resumed = false

    public init(toolVersion: String, commandLine: [String]) {
        (self.toolVersion, self.commandLine) = (toolVersion, commandLine)
    }

    /// Writes both files into `folder`.
    func write(_ flow: FlowFile, to folder: URL) throws {
        try Data(("# The flow as it ran: defaults filled in, --set overrides applied.\n" + flow.resolvedText).utf8)
            .write(to: folder.appendingPathComponent("flow.resolved.yaml"), options: .atomic)
        try JSONEncoder.runFiles.encode(self).write(to: folder.appendingPathComponent("run.json"), options: .atomic)
    }
}

/// What a run does with a run folder that holds an earlier run (its `report.json`).
public enum EarlierRun: Sendable {
    /// Stop before anything runs, saying how to replace, continue or move the run.
    case refuse
    /// Empty the folder first (after taking its lock).
    case replace
    /// Write over it: files of the same name are replaced, others stay (a resumed run, a warm-up
    /// that continues filling its cache).
    case writeOver
}
