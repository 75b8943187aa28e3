import Foundation

/// Thrown by `emit` when the run is stopping; stages let it propagate.
public struct FlowStopped: Error, CustomStringConvertible {
    public let reason: String
    public var description: String { "the run stopped: \(reason)" }
}

/// What a stage sees while it works: where its outputs go, and the run's counters and metrics.
public final class StageContext<Output: Sendable>: @unchecked Sendable {
    /// The stage's name in the flow.
    public let stageName: String
    let run: RunState
    let statistics: StageStatistics
    private let deliver: (Output) -> Bool
    private let buffered: Bool
    private var pending: [Output] = []

    init(stageName: String, run: RunState, statistics: StageStatistics, buffered: Bool,
         deliver: @escaping (Output) -> Bool) {
        self.stageName = stageName
        self.run = run
        self.statistics = statistics
        self.buffered = buffered
        self.deliver = deliver
    }

    /// Sends `item` downstream, waiting while the next stage is full.
    /// - Throws: `FlowStopped` when the run is stopping.
    public func emit(_ item: Output) throws {
        if buffered { pending.append(item); return }
        if !deliver(item) { throw FlowStopped(reason: run.stopReason ?? "cancelled") }
    }

    /// Adds `amount` to the run-wide counter `name` (cache hits, tiles passed through, …).
    public func count(_ name: String, _ amount: Int = 1) { run.count(name, amount) }

    /// Records a metric of the run (accuracy, loss, …); the last value wins.
    public func record(metric name: String, _ value: Double) { run.record(metric: name, value) }

    /// Lists a picture the stage wrote (`path` relative to the run folder) in the run's report.
    public func attach(picture path: String, title: String) { run.attach(FlowReport.Picture(stage: stageName, title: title, path: path)) }

    /// Records that `item` failed (a source or a stage that handles its items' errors itself):
    /// under `on_error: fail` this stops the run.
    public func reportFailure(item: String, reason: String) {
        Self.recordFailure(statistics: statistics, run: run, item: item, reason: reason)
    }

    static func recordFailure(statistics: StageStatistics, run: RunState, item: String, reason: String) {
        statistics.failed(item: item, reason: reason)
        if statistics.policy == .fail {
            run.stop(reason: "stage '\(statistics.name)' failed on \(item): \(reason)", failure: true)
        }
    }

    /// Whether the run is stopping (long stages check it between steps).
    public var isStopping: Bool { run.isStopping }

    /// Drops items held back for a failed item (it fails as a whole).
    func discardPending() { pending.removeAll(keepingCapacity: true) }

    /// Hands over items held back by an ordered stage, in order.
    func flush() -> Bool {
        defer { pending.removeAll(keepingCapacity: true) }
        for item in pending where !deliver(item) { return false }
        return true
    }
}
