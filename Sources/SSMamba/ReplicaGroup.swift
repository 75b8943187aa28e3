import Foundation

/// Threads of one process training copies of one model together: the in-process counterpart of
/// MPI's processes (`ProcessGroup`). Each replica talks through its own `member(_:)`; a `sum` waits
/// until every replica has called it, then each replica adds up its slice of the buffers,
///     s[i] = ((v₀[i] + v₁[i]) + v₂[i]) + …   (always in replica order),
/// and writes s[i] into every replica's buffer, so every replica ends with the same bits.
///
/// With an `outer` group (this process is one of several under MPI), replica 0 then sums the
/// process's total with the other processes (`outer.sum`) and every replica copies the result:
/// `processes` counts every replica of every process.
///
/// A replica that fails calls `abandon()`: the others' pending and later `sum`s throw instead of
/// waiting for it forever.
public final class ReplicaGroup: @unchecked Sendable {
    public let replicas: Int
    /// The processes this one trains with (nil: this process alone).
    public let outer: ProcessGroup?
    private let condition = NSCondition()
    private var buffers: [UnsafeMutableBufferPointer<Float>?]
    private var arrived = 0, generation = 0
    private var abandoned = false

    public init(replicas: Int, outer: ProcessGroup? = nil) {
        precondition(replicas >= 1, "a replica group needs at least one replica")
        self.replicas = replicas
        self.outer = outer
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
        var processes: Int { group.replicas * (group.outer?.processes ?? 1) }
        func sum(_ values: UnsafeMutableBufferPointer<Float>) throws { try group.sum(values, replica: index) }
    }

    private func sum(_ values: UnsafeMutableBufferPointer<Float>, replica: Int) throws {
        guard replicas > 1 else {
            try outer?.sum(values)
            return
        }
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
        if let outer {
            try barrier()  // replica 0's buffer holds this process's sum
            if replica == 0 {
                do { try outer.sum(first) } catch { abandon(); throw error }
            }
            try barrier()  // and now every process's
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
