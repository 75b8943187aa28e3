import Foundation

/// A first-in, first-out queue of at most `capacity` items between stages, shared by any number of
/// producer and consumer threads.
///
/// Contract: `send` blocks while the queue is full (backpressure: a slow consumer suspends its
/// producers); `receive` blocks while it is empty and returns `nil` once every producer has called
/// `finishProducing()` and the queue is drained, or at once after `cancel()`. Time spent blocked
/// is returned to the caller so stages can report where they waited.
public final class BoundedChannel<Element: Sendable>: @unchecked Sendable {
    public let capacity: Int
    private let condition = NSCondition()
    private var buffer: [Element?]
    private var head = 0
    private var count = 0
    private var producers: Int
    private var cancelled = false
    private var peak = 0

    /// - Parameters:
    ///   - capacity: most items held at once (≥ 1).
    ///   - producers: how many producers will call `finishProducing()` before the channel ends.
    public init(capacity: Int, producers: Int = 1) {
        precondition(capacity >= 1, "a channel holds at least one item")
        self.capacity = capacity
        self.buffer = Array(repeating: nil, count: capacity)
        self.producers = producers
    }

    /// Adds a producer (used while a graph is being built, before anything runs).
    public func addProducer() {
        condition.lock(); producers += 1; condition.unlock()
    }

    /// Puts `element` at the back, waiting while the channel is full.
    /// - Returns: `false` if the channel was cancelled (the element is dropped by design: the run
    ///   is stopping), and the seconds spent waiting.
    @discardableResult
    public func send(_ element: Element) -> (delivered: Bool, waited: Double) {
        condition.lock()
        defer { condition.unlock() }
        var waited = 0.0
        if count == capacity && !cancelled {
            let start = DispatchTime.now().uptimeNanoseconds
            while count == capacity && !cancelled { condition.wait() }
            waited = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
        }
        if cancelled { return (false, waited) }
        buffer[(head + count) % capacity] = element
        count += 1
        peak = max(peak, count)
        condition.broadcast()
        return (true, waited)
    }

    /// Takes the front element, waiting while the channel is empty and producers remain.
    /// - Returns: the element (or `nil` when the channel has ended or was cancelled) and the
    ///   seconds spent waiting.
    public func receive() -> (element: Element?, waited: Double) {
        condition.lock()
        defer { condition.unlock() }
        var waited = 0.0
        if count == 0 && producers > 0 && !cancelled {
            let start = DispatchTime.now().uptimeNanoseconds
            while count == 0 && producers > 0 && !cancelled { condition.wait() }
            waited = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
        }
        if cancelled || count == 0 { return (nil, waited) }
        let element = buffer[head]
        buffer[head] = nil
        head = (head + 1) % capacity
        count -= 1
        condition.broadcast()
        return (element, waited)
    }

    /// One producer is done; when the last one is, consumers drain what is left and then end.
    public func finishProducing() {
        condition.lock()
        producers = max(0, producers - 1)
        condition.broadcast()
        condition.unlock()
    }

    /// Stops the channel: waiting senders and receivers return at once; queued items are dropped.
    public func cancel() {
        condition.lock()
        cancelled = true
        for i in buffer.indices { buffer[i] = nil }
        count = 0
        condition.broadcast()
        condition.unlock()
    }

    /// Items queued now, and the most ever queued at once.
    public var occupancy: (now: Int, peak: Int) {
        condition.lock(); defer { condition.unlock() }
        return (count, peak)
    }
}
