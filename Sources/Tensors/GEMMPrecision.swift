import Foundation

/// The number format of a matrix product's operands. Products always accumulate and return
/// float32; `bfloat16` rounds both operands to bfloat16 (8 significant bits, float32's range)
/// first. Two bfloat16 values multiply exactly in float32, so a bfloat16 product differs from the
/// float32 one only by that rounding of its operands (and the order of the sums).
public enum GEMMPrecision: String, Sendable, Codable, CaseIterable {
    case float32 = "fp32"
    case bfloat16 = "bf16"

    /// The precision to train in when this one is asked for: bfloat16 only where the CPU
    /// multiplies it in hardware (`OneDNN.hasBFloat16Hardware`); elsewhere its products would be
    /// emulated, slower than float32, so float32.
    public var onThisCPU: GEMMPrecision {
        self == .bfloat16 && OneDNN.hasBFloat16Hardware ? .bfloat16 : .float32
    }
}

extension BLAS {
    /// The calling thread's product precision (float32 unless inside `withPrecision`). It is per
    /// thread so that a training stage's bfloat16 products never leak into an evaluation running
    /// beside it; the engine's workers inherit it from the thread that split the work.
    public static var precision: GEMMPrecision {
        ThreadState.current.contains(.bfloat16Products) ? .bfloat16 : .float32
    }

    /// Runs `body` with this thread's products in `precision`, then restores the previous one.
    public static func withPrecision<Result>(_ precision: GEMMPrecision, _ body: () throws -> Result) rethrows -> Result {
        try ThreadState.with(.bfloat16Products, precision == .bfloat16, body)
    }

    /// Whether the calling thread runs every kernel itself, without Dispatch workers.
    public static var isOnOneThread: Bool { workerLimit == 1 }

    /// The most workers a kernel called on this thread may split over (nil: no limit of the
    /// thread's own; `threads` and `ThreadPlan.kernelWorkers` apply).
    public static var workerLimit: Int? {
        let limit = ThreadState.current.workerLimit
        return limit > 0 ? limit : nil
    }

    /// Runs `body` with every kernel it calls (GEMMs, elementwise maps, the model's split loops)
    /// on the calling thread alone: for callers that already run one task per core, such as
    /// evaluation chunks side by side, where splitting each layer again only adds overhead.
    public static func onOneThread<Result>(_ body: () throws -> Result) rethrows -> Result {
        try withWorkers(1, body)
    }

    /// Runs `body` with the kernels it calls split over at most `workers` workers (≥ 1): for
    /// callers that run several tasks side by side, each with its share of the cores.
    public static func withWorkers<Result>(_ workers: Int, _ body: () throws -> Result) rethrows -> Result {
        try ThreadState.withWorkerLimit(max(1, workers), body)
    }
}

/// Per-thread settings of the engine, kept in one pthread key: flags in the low byte, a worker
/// limit (0: none) above it.
struct ThreadState: OptionSet {
    let rawValue: Int
    static let bfloat16Products = ThreadState(rawValue: 1)
    private static let flagBits = 8

    static var current: ThreadState {
        ThreadState(rawValue: Int(bitPattern: pthread_getspecific(key)))
    }

    var workerLimit: Int { rawValue >> Self.flagBits }

    /// Runs `body` with `flag` set (or cleared) on this thread, then restores the previous state.
    static func with<Result>(_ flag: ThreadState, _ on: Bool, _ body: () throws -> Result) rethrows -> Result {
        var state = current
        if on { state.insert(flag) } else { state.remove(flag) }
        return try with(state, body)
    }

    /// Runs `body` with this thread's worker limit set to `limit`, then restores the previous state.
    static func withWorkerLimit<Result>(_ limit: Int, _ body: () throws -> Result) rethrows -> Result {
        let flags = current.rawValue & ((1 << flagBits) - 1)
        return try with(ThreadState(rawValue: flags | limit << flagBits), body)
    }

    private static func with<Result>(_ state: ThreadState, _ body: () throws -> Result) rethrows -> Result {
        let saved = pthread_getspecific(key)
        pthread_setspecific(key, UnsafeRawPointer(bitPattern: state.rawValue))
        defer { pthread_setspecific(key, saved) }
        return try body()
    }

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        let status = pthread_key_create(&key, nil)
        precondition(status == 0, "pthread_key_create failed (\(status))")
        return key
    }()
}
