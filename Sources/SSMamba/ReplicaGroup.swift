import Foundation

/// Threads of one process training copies of one model together: the in-process counterpart of
/// MPI's processes (`ProcessGroup`). Each replica talks through its own `member(_:)`; a `sum` waits
/// until every replica has called it, then each replica adds up its slice of the buffers,
///     s[i] = ((v₀[i] + v₁[i]) + v₂[i]) + …   (always in replica order),
/// and writes s[i] into every replica's buffer, so every replica ends with the same bits.
///
/// A replica that fails calls `abandon()`: the others' pending and later `sum`s throw instead of
/// waiting for it forever.
public final class ReplicaGroup: @unchecked Sendable {
    public let replicas: Int
    private let condition = NSCondition()
    private var buffers: [UnsafeMutableBufferPointer<Float>?]
    private var arrived = 0, generation = 0
    private var abandoned = false

    public init(replicas: Int) {
        precondition(replicas >= 1, "a replica group needs at least one replica")
        self.replicas = replicas
        buffers = Array(repeating: nil, count: replicas)
    }

    /// Replica `index`'s handle, what its trainer uses as its `group`.
    public func member(_ index: Int) -> ProcessGroup {
        precondition((0..<replicas).contains(index), "replica \(index) of \(replicas)")
        return Member(group: self, index: index)
    }

    /// Makes every waiting and later `sum` throw (a replica failed and will not come).
    public func abandon() {
        condition.lock()
        abandoned = true
        condition.broadcast()
        condition.unlock()
    }

    /// Why a replica's sum did not complete.
    public struct Abandoned: Error, CustomStringConvertible {
        public var description: String { "another replica of this training failed" }
    }

    private final class Member: ProcessGroup, @unchecked Sendable {
        let group: ReplicaGroup
        let index: Int
        init(group: ReplicaGroup, index: Int) { (self.group, self.index) = (group, index) }
        var processes: Int { group.replicas }
        func sum(_ values: UnsafeMutableBufferPointer<Float>) throws { try group.sum(values, replica: index) }
    }

    private func sum(_ values: UnsafeMutableBufferPointer<Float>, replica: Int) throws {
        guard replicas > 1 else { return }
        condition.lock()
        buffers[replica] = values
        condition.unlock()
        try barrier()
        let all = buffers.map { $0! }
        precondition(all.allSatisfy { $0.count == values.count }, "replicas summed buffers of different sizes")
        let count = values.count
        let slice = (count * replica / replicas)..<(count * (replica + 1) / replicas)
        let first = all[0]
        for other in all.dropFirst() {
            for i in slice { first[i] += other[i] }
        }
        for other in all.dropFirst() {
            for i in slice { other[i] = first[i] }
        }
        try barrier()  // nobody returns (and reuses its buffer) before every slice is written
    }

    /// Waits until every replica has arrived (or one abandoned the group).
    private func barrier() throws {
        condition.lock()
        defer { condition.unlock() }
        guard !abandoned else { throw Abandoned() }
        let mine = generation
        arrived += 1
        if arrived == replicas {
            arrived = 0
            generation += 1
            condition.broadcast()
        } else {
            while generation == mine && !abandoned { condition.wait() }
        }
        if generation == mine && abandoned { throw Abandoned() }
    }
}
