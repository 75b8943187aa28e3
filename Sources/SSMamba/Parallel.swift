import Dispatch
import Foundation
import Tensors

/// How the engine splits work over cores (see README "Thread plan").
///
/// GEMMs and large elementwise maps split over `BLAS.threads` Dispatch workers (OpenBLAS itself
/// runs single-threaded); every other kernel (scan, convolutions, attention's per-head loops)
/// splits its outer loop over `kernelWorkers` workers. They never run at the same time inside one
/// layer, so each gets all cores in its turn. Set once at start-up.
public enum ThreadPlan {
    nonisolated(unsafe) private static var workers = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// Workers of the split kernels (default: every core; at most the calling thread's
    /// `BLAS.workerLimit`, so 1 inside `BLAS.onOneThread`).
    public static var kernelWorkers: Int {
        get { min(workers, BLAS.workerLimit ?? workers) }
        set { workers = max(1, newValue) }
    }
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
        let precision = BLAS.precision  // the workers' products keep the caller's precision
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            let start = count * worker / workers, end = count * (worker + 1) / workers
            BLAS.withPrecision(precision) { for i in start..<end { body(i) } }
        }
    }

    /// Splits 0..<count into one contiguous range per worker; `body(worker, range)`.
    static func chunks(_ count: Int, _ body: @Sendable (Int, Range<Int>) -> Void) -> Int {
        let workers = max(1, min(ThreadPlan.kernelWorkers, count))
        if workers == 1 {
            body(0, 0..<count)
            return 1
        }
        let precision = BLAS.precision
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            BLAS.withPrecision(precision) { body(worker, (count * worker / workers)..<(count * (worker + 1) / workers)) }
        }
        return workers
    }
}
