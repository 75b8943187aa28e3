import Foundation

/// State shared by every stage of one run: the stop flag with its reason, counters and metrics.
final class RunState: @unchecked Sendable {
    private let lock = NSLock()
    private var stopReasonStorage: String?
    private var stoppedByFailure = false
    private var counters: [String: Int] = [:]
    private var metrics: [String: Double] = [:]
    private var pictures: [FlowReport.Picture] = []
    private var onStop: [() -> Void] = []

    var isStopping: Bool { lock.withLock { stopReasonStorage != nil } }
    var stopReason: String? { lock.withLock { stopReasonStorage } }
    var failed: Bool { lock.withLock { stoppedByFailure } }

    /// Registers work to do once when the run stops (cancelling channels).
    func whenStopping(_ action: @escaping () -> Void) { lock.withLock { onStop.append(action) } }

    /// Stops the run; only the first reason is kept.
    func stop(reason: String, failure: Bool) {
        let actions: [() -> Void] = lock.withLock {
            guard stopReasonStorage == nil else { return [] }
            stopReasonStorage = reason
            stoppedByFailure = failure
            return onStop
        }
        for action in actions { action() }
    }

    func count(_ name: String, _ amount: Int) { lock.withLock { counters[name, default: 0] += amount } }
    func record(metric name: String, _ value: Double) { lock.withLock { metrics[name] = value } }
    func attach(_ picture: FlowReport.Picture) { lock.withLock { pictures.append(picture) } }
    var snapshot: (counters: [String: Int], metrics: [String: Double]) { lock.withLock { (counters, metrics) } }
    var attachedPictures: [FlowReport.Picture] { lock.withLock { pictures } }
}

/// A handle that stops a running flow from outside (Ctrl-C, a test).
public final class FlowCancellation: @unchecked Sendable {
    private let lock = NSLock()
    private var run: RunState?
    private var pendingReason: String?

    public init() {}

    /// Stops the run cleanly: stages finish (writers flush) and the report is written.
    public func cancel(reason: String = "cancelled") {
        let target: RunState? = lock.withLock {
            if run == nil { pendingReason = reason }
            return run
        }
        target?.stop(reason: reason, failure: false)
    }

    func attach(_ state: RunState) {
        let reason: String? = lock.withLock { run = state; return pendingReason }
        if let reason { state.stop(reason: reason, failure: false) }
    }
}
