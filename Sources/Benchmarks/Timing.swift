import Foundation

/// Median and spread of repeated wall-clock timings, in seconds.
struct Timing {
    var median: Double
    var low: Double
    var high: Double

    /// One warm-up call, then `repeats` timed calls.
    static func measure(repeats: Int, _ body: () -> Void) -> Timing {
        body()
        var times: [Double] = []
        for _ in 0..<max(1, repeats) {
            let start = DispatchTime.now().uptimeNanoseconds
            body()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        times.sort()
        return Timing(median: times[times.count / 2], low: times.first!, high: times.last!)
    }

    /// (max − min) / median: above ~0.25 the machine was too noisy to trust the figure.
    var spread: Double { (high - low) / median }
}

/// Peak resident memory of this process so far, in bytes (getrusage's ru_maxrss is in KiB).
func peakResidentBytes() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) * 1024
}
