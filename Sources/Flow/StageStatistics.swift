import Foundation

/// Counts and timings of one stage, updated by its workers and read by the progress display.
final class StageStatistics: @unchecked Sendable {
    let name: String
    let workers: Int
    let ordered: Bool
    let policy: ErrorPolicy
    /// Most failures kept with their reasons; the total is always exact.
    static let failuresKept = 1000

    private let lock = NSLock()
    private(set) var itemsIn = 0
    private(set) var itemsOut = 0
    private(set) var failureCount = 0
    private(set) var failures: [FailureRecord] = []
    private(set) var busySeconds = 0.0
    private(set) var waitingForInputSeconds = 0.0
    private(set) var waitingForOutputSeconds = 0.0
    private(set) var finished = false
    var inputOccupancy: () -> (now: Int, peak: Int, capacity: Int) = { (0, 0, 0) }

    init(name: String, workers: Int, ordered: Bool, policy: ErrorPolicy) {
        self.name = name
        self.workers = workers
        self.ordered = ordered
        self.policy = policy
    }

    func received(waited: Double) { lock.withLock { itemsIn += 1; waitingForInputSeconds += waited } }
    func emitted(waited: Double) { lock.withLock { itemsOut += 1; waitingForOutputSeconds += waited } }
    func worked(_ seconds: Double) { lock.withLock { busySeconds += seconds } }
    func markFinished() { lock.withLock { finished = true } }

    func failed(item: String, reason: String) {
        lock.withLock {
            failureCount += 1
            if failures.count < Self.failuresKept { failures.append(FailureRecord(item: item, reason: reason)) }
        }
    }

    func report(elapsed: Double) -> StageReport {
        let queue = inputOccupancy()
        return lock.withLock {
            StageReport(
                name: name, workers: workers, ordered: ordered, onError: policy,
                itemsIn: itemsIn, itemsOut: itemsOut, failed: failureCount, failures: failures,
                busySeconds: busySeconds, waitingForInputSeconds: waitingForInputSeconds,
                waitingForOutputSeconds: waitingForOutputSeconds,
                itemsPerSecond: elapsed > 0 ? Double(itemsIn) / elapsed : 0,
                queueCapacity: queue.capacity, queuePeak: queue.peak, queueNow: queue.now, finished: finished)
        }
    }
}
