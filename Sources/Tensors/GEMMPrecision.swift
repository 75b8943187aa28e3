import Foundation

/// The number format of a matrix product's operands. Products always accumulate and return
/// float32; `bfloat16` rounds both operands to bfloat16 (8 significant bits, float32's range)
/// first. Two bfloat16 values multiply exactly in float32, so a bfloat16 product differs from the
/// float32 one only by that rounding of its operands (and the order of the sums).
public enum GEMMPrecision: String, Sendable, Codable, CaseIterable {
    case float32 = "fp32"
    case bfloat16 = "bf16"
}

extension BLAS {
    /// The calling thread's product precision (float32 unless inside `withPrecision`). It is per
    /// thread so that a training stage's bfloat16 products never leak into an evaluation running
    /// beside it; the engine's workers inherit it from the thread that split the work.
    public static var precision: GEMMPrecision {
        pthread_getspecific(precisionKey) == nil ? .float32 : .bfloat16
    }

    /// Runs `body` with this thread's products in `precision`, then restores the previous one.
    public static func withPrecision<Result>(_ precision: GEMMPrecision, _ body: () throws -> Result) rethrows -> Result {
        let saved = pthread_getspecific(precisionKey)
        pthread_setspecific(precisionKey, precision == .bfloat16 ? UnsafeRawPointer(bitPattern: 1) : nil)
        defer { pthread_setspecific(precisionKey, saved) }
        return try body()
    }

    private static let precisionKey: pthread_key_t = {
        var key = pthread_key_t()
        let status = pthread_key_create(&key, nil)
        precondition(status == 0, "pthread_key_create failed (\(status))")
        return key
    }()
}
