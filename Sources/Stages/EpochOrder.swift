import Foundation
import Randomness
import Tensors

/// The order a training stage visits its tiles in: the endless sequence of seeded permutations of
/// 0..<count (epoch e is permutation e), cut into batches. Every epoch visits every tile exactly
/// once, whatever the batch size (a batch may straddle two epochs), and batch k is the same
/// whoever asks for it and when, so readers can fetch batches out of order and a resumed run
/// continues the same order.
public final class EpochOrder: @unchecked Sendable {
    public let count: Int
    public let seed: UInt64
    private let lock = NSLock()
    private var permutations: [Int: [Int]] = [:]

    public init(count: Int, seed: UInt64) {
        precondition(count > 0, "an epoch order needs at least one item")
        self.count = count
        self.seed = seed
    }

    /// Items `k·size ..< (k+1)·size` of the sequence.
    public func batch(_ k: Int, size: Int) -> [Int] {
        var items: [Int] = []
        items.reserveCapacity(size)
        var position = k * size
        let end = position + size
        while position < end {  // a batch touches one epoch, or two when it straddles them
            let epoch = position / count, upto = min(end, (epoch + 1) * count)
            items += permutation(epoch)[(position - epoch * count)..<(upto - epoch * count)]
            position = upto
        }
        return items
    }

    /// `batch(_:size:)` as a plan for `CacheBatchStream`.
    public func batchPlan(size: Int) -> @Sendable (Int) -> [Int] {
        { [self] k in batch(k, size: size) }
    }

    /// Permutation `epoch` (the last few are kept: readers work on neighbouring batches).
    public func permutation(_ epoch: Int) -> [Int] {
        lock.withLock {
            if let known = permutations[epoch] { return known }
            var rng = RandomGenerator(seed: seed).stream(UInt64(epoch))
            let order = rng.permutation(count)
            if permutations.count >= 4, let oldest = permutations.keys.min() { permutations[oldest] = nil }
            permutations[epoch] = order
            return order
        }
    }
}
