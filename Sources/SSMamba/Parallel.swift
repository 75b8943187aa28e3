import Dispatch
import Foundation

/// How the engine splits work over cores (see README "Thread plan").
///
/// GEMMs run on OpenBLAS's threads; every other kernel (scan, convolutions, attention's per-head
/// loops) splits its outer loop over `kernelWorkers` Dispatch workers. The two never run at the
/// same time inside one layer, so each gets all cores in its turn. Set once at start-up.
public enum ThreadPlan {
    nonisolated(unsafe) public static var kernelWorkers = max(1, ProcessInfo.processInfo.activeProcessorCount)
}

/// A pointer that may cross into Dispatch workers. Ownership rule: the caller keeps the memory
/// alive for the whole `Parallel.forEach`, and workers write disjoint parts of it.
struct SharedPointer<T>: @unchecked Sendable {
    let base: UnsafeMutablePointer<T>
    init(_ base: UnsafeMutablePointer<T>) { self.base = base }
    init(_ base: UnsafePointer<T>) { self.base = UnsafeMutablePointer(mutating: base) }
}

enum Parallel {
    /// Calls `body(i)` for i in 0..<count, split over up to `ThreadPlan.kernelWorkers` workers
    /// as contiguous ranges; runs inline when there is one worker or one item.
    static func forEach(_ count: Int, _ body: @Sendable (Int) -> Void) {
        let workers = min(ThreadPlan.kernelWorkers, count)
        if workers <= 1 {
            for i in 0..<count { body(i) }
            return
        }
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            let start = count * worker / workers, end = count * (worker + 1) / workers
            for i in start..<end { body(i) }
        }
    }

    /// Splits 0..<count into one contiguous range per worker; `body(worker, range)`.
    static func chunks(_ count: Int, _ body: @Sendable (Int, Range<Int>) -> Void) -> Int {
        let workers = max(1, min(ThreadPlan.kernelWorkers, count))
        if workers == 1 {
            body(0, 0..<count)
            return 1
        }
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            body(worker, (count * worker / workers)..<(count * (worker + 1) / workers))
        }
        return workers
    }
}
