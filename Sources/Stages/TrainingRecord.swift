import Flow
import Foundation
import SSMamba
import TileCache

/// What a training stage keeps in its run folder so that `ssmamba run FLOW --resume` continues
/// where a killed run stopped:
///
///     <run>/<stage>/last/            training checkpoint: weights, AdamW moments, counters, the
///                                    model's random generator, the data position (next batch)
///     <run>/<stage>/train_log.csv    one row per batch: step, loss, learning rate
///
/// A checkpoint is continued only by the run that made it: the same stage parameters and seed
/// (checked when the flow is assembled, before anything runs) and the same tiles in the same
/// order (checked when training starts); otherwise it is refused with what to do.
/// Checkpoints are written whole (`Checkpoint.write` renames into place), after a complete step,
/// so the last one is valid whenever the process dies. Under data-parallel training only rank 0
/// writes; every rank continues from the same `last`.
final class TrainingRecord {
    let folder: URL
    /// Whether this process writes the record (rank 0, or the only process).
    let writes = DataParallel.world.isRoot
    /// Fingerprint of the stage's parameters and the seed.
    let parameters: UInt64
    let resume: Bool
    /// Fingerprint of the tiles, in order (set by `start`).
    private var tiles: UInt64 = 0, tileCount = 0
    private var log: FileHandle?

    var lastURL: URL { folder.appendingPathComponent("last") }
    var logURL: URL { folder.appendingPathComponent("train_log.csv") }

    /// - Parameters:
    ///   - ignoring: parameters that do not change the result (threads, checkpoint interval).
    /// - Throws: with `resume`, when `last` exists but was made with other parameters or seed.
    init(folder: URL, stage: String, parameters values: ParameterValues, ignoring: Set<String>, seed: UInt64, resume: Bool) throws {
        self.folder = folder
        self.resume = resume
        var fields = ["stage": stage, "seed": "\(seed)"]
        for (name, value) in values.values where !ignoring.contains(name) { fields["parameter." + name] = value.canonicalText }
        parameters = Fingerprint.parameters(fields)
        if resume, let notes = try lastNotes(), notes["parameters"] != String(parameters, radix: 16) {
            throw StageError(.invalidInput, "\(lastURL.path)", "made by a run with other parameters or seed; run again without --resume to start afresh (or with the flow and --set overrides that made it)")
        }
    }

    deinit { try? log?.close() }

    /// The notes of `last`, or nil when there is none.
    private func lastNotes() throws -> [String: String]? {
        guard FileManager.default.fileExists(atPath: lastURL.appendingPathComponent("checkpoint.json").path) else { return nil }
        return try Checkpoint.readManifest(from: lastURL).notes
    }

    /// Starts the record: with `resume` and a `last` checkpoint, restores `trainer` from it and
    /// returns its data position and notes; otherwise (or without one) starts at 0. The log keeps
    /// exactly the rows before the position.
    func start<Model>(_ trainer: Trainer<Model>, tiles list: TrainingSet) throws -> (position: Int, notes: [String: String]) {
        if writes { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true) }
        (tiles, tileCount) = (Fingerprint.records(list.keys), list.count)
        var position = 0, notes: [String: String] = [:]
        let exists = FileManager.default.fileExists(atPath: lastURL.appendingPathComponent("checkpoint.json").path)
        if resume && exists {
            let checkpoint = try Checkpoint.read(from: lastURL)
            guard checkpoint.manifest.notes["parameters"] == String(parameters, radix: 16),
                  let saved = checkpoint.manifest.notes["position"].flatMap(Int.init) else {
                throw StageError(.invalidInput, "\(lastURL.path)", "made by a run with other parameters or seed; run again without --resume to start afresh")
            }
            guard checkpoint.manifest.notes["tiles"] == String(tiles, radix: 16) else {
                throw StageError(.invalidInput, "\(lastURL.path)", "made on other tiles (\(checkpoint.manifest.notes["tile_count"] ?? "?") then, \(list.count) now: the cache or the data changed); run again without --resume to start afresh")
            }
            try trainer.restore(from: checkpoint, source: lastURL.path)
            (position, notes) = (saved, checkpoint.manifest.notes)
        }
        // The log: the rows before `position` (all of an earlier run's rows past it are redone).
        var kept = "step,loss,learning_rate\n"
        if position > 0, let text = try? String(contentsOf: logURL, encoding: .utf8) {
            let rows = text.split(separator: "\n").dropFirst().prefix { Int($0.prefix { $0 != "," }).map { $0 < position } ?? false }
            guard rows.count == position else {
                throw StageError(.invalidInput, "\(logURL.path)", "holds \(rows.count) rows before step \(position), the checkpoint's position; run again without --resume")
            }
            kept += rows.map { $0 + "\n" }.joined()
        }
        guard writes else { return (position, notes) }
        do {
            try Data(kept.utf8).write(to: logURL, options: .atomic)
            log = try FileHandle(forWritingTo: logURL)
            try log?.seekToEnd()
        } catch {
            throw StageError(.invalidInput, "\(logURL.path)", "cannot write the training log (\(error.localizedDescription)); check free space and permissions")
        }
        return (position, notes)
    }

    /// Appends batch `step`'s row.
    func log(step: Int, loss: Float, learningRate: Float) throws {
        do { try log?.write(contentsOf: Data(String(format: "%d,%.9g,%.9g\n", step, loss, learningRate).utf8)) } catch {
            throw StageError(.invalidInput, "\(logURL.path)", "cannot write the training log (\(error.localizedDescription)); check free space")
        }
    }

    /// Writes `last`: the trainer after a complete step, the data position to continue from, `notes`.
    func save<Model>(_ trainer: Trainer<Model>, config: ModelConfiguration, position: Int, notes: [String: String]) throws {
        guard writes else { return }
        var all = notes
        all["parameters"] = String(parameters, radix: 16)
        all["tiles"] = String(tiles, radix: 16)
        all["tile_count"] = "\(tileCount)"
        all["position"] = "\(position)"
        try log?.synchronize()
        try trainer.checkpoint(config: config, notes: all).write(to: lastURL)
    }
}
