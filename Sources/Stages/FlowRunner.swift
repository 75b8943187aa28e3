import Flow
import Foundation

/// Runs flow files: validate, assemble, run with progress, write the report.
public enum FlowRunner {
    /// Loads and validates a flow file against the catalog.
    public static func load(_ path: String, overrides: [String] = []) throws -> FlowFile {
        try FlowFile.load(path, catalog: Catalog.flowCatalog, overrides: overrides)
    }

    /// Runs `flow` into `runFolder` (default: the flow's `output`), writing report.md and
    /// report.json there whatever happens once the graph has started.
    /// With `resume`, training stages continue from the `last` checkpoints of an earlier run in the same folder.
    /// `earlier` says what to do when the folder holds an earlier run; `provenance`, when given,
    /// is written with the resolved flow into the folder (rank 0).
    public static func run(_ flow: FlowFile, runFolder: URL? = nil, resume: Bool = false, cancellation: FlowCancellation? = nil,
                           printer: ProgressPrinter? = ProgressPrinter(), earlier: EarlierRun = .writeOver,
                           provenance: RunProvenance? = nil) throws -> (report: FlowReport, folder: URL) {
        let folder = runFolder ?? URL(fileURLWithPath: flow.output)
        let problems = FlowPreflight.problems(flow, runFolder: folder) + DataParallel.problems(flow)
        guard problems.isEmpty else { throw FlowFileError(issues: problems) }
        let earlierReport = folder.appendingPathComponent("report.json")
        if earlier == .refuse && !resume && FileManager.default.fileExists(atPath: earlierReport.path) {
            throw StageError(.invalidInput, folder.path, "holds an earlier run (report.json); pass --overwrite to replace it, --resume to continue it, or --out to run into another folder")
        }
        // Several processes (mpirun, srun): rank 0 holds the run folder, prints and writes the report.
        let root = DataParallel.world.isRoot
        let printer = root ? printer : nil
        let existed = FileManager.default.fileExists(atPath: folder.path)
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw StageError("cannot create the run folder \(folder.path): \(error.localizedDescription) (choose another with --out)")
        }
        let lock = root ? try RunFolderLock(folder) : nil
        defer { lock?.release() }
        if root && earlier == .replace && !resume {
            // The earlier run's files go; a tile cache kept inside the run folder (an LMDB
            // environment, its data.mdb) is not part of the run and stays.
            for name in try FileManager.default.contentsOfDirectory(atPath: folder.path) where name != ".run.lock" {
                let entry = folder.appendingPathComponent(name)
                if FileManager.default.fileExists(atPath: entry.appendingPathComponent("data.mdb").path) { continue }
                try FileManager.default.removeItem(at: entry)
            }
        }
        if root, var provenance {
            provenance.resumed = resume
            try provenance.write(flow, to: folder)
        }
        let graph: FlowGraph
        do { graph = try FlowAssembler.build(flow, runFolder: folder, resume: resume) } catch {
            lock?.release()
            // Nothing ran: leave no empty run folder behind.
            if !existed, (try? FileManager.default.contentsOfDirectory(atPath: folder.path))?.isEmpty == true {
                try? FileManager.default.removeItem(at: folder)
            }
            throw error
        }
        printer?.start(flow: flow.name, runFolder: folder.path)
        let report = try graph.run(cancellation: cancellation, progressInterval: 0.5) { snapshot in printer?.update(snapshot) }
        if root { try report.write(to: folder) }
        printer?.finish(report, reportFolder: folder.path)
        return (report, folder)
    }

    /// The flow cut after its first cache stage: the deterministic prefix a warm-up fills.
    public static func warmUpPrefix(of flow: FlowFile) throws -> FlowFile {
        guard let cache = flow.stages.first(where: { $0.kind.name == CacheKind.name }) else {
            throw StageError(.invalidInput, "\(flow.path)", "the flow has no `cache` stage, so there is nothing to warm; add `- stage: cache` after the deterministic stages")
        }
        return flow.restricted(toAncestorsOf: cache.name)
    }
}
