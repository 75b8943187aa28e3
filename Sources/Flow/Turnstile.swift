import Foundation

/// Lets workers of an ordered stage hand over their results strictly by input sequence number:
/// worker k waits until results 0..<k have been handed over.
final class Turnstile: @unchecked Sendable {
    private let condition = NSCondition()
    private var next = 0
    private var cancelled = false

    /// Waits for `sequence`'s turn. Returns `false` when the run is stopping instead.
    func waitForTurn(_ sequence: Int) -> Bool {
        condition.lock(); defer { condition.unlock() }
        while next != sequence && !cancelled { condition.wait() }
        return !cancelled
    }

    /// Ends the current turn.
    func advance() {
        condition.lock(); next += 1; condition.broadcast(); condition.unlock()
    }

    func cancel() {
        condition.lock(); cancelled = true; condition.broadcast(); condition.unlock()
    }
}
