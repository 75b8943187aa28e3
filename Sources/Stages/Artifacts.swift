import Foundation

/// Checkpoints one stage hands to another within a run (pretraining → fine-tuning → slide
/// evaluation): a stage waits until the named producer has published, or has failed.
final class Artifacts: @unchecked Sendable {
    private let condition = NSCondition()
    private var published: [String: Result<URL, StageError>] = [:]

    func publish(_ name: String, _ result: Result<URL, StageError>) {
        condition.lock()
        published[name] = result
        condition.broadcast()
        condition.unlock()
    }

    /// Runs `body` and publishes its checkpoint, or its failure (so waiting stages fail too).
    func produce(_ name: String, _ body: () throws -> URL) throws {
        do {
            publish(name, .success(try body()))
        } catch {
            publish(name, .failure(StageError("'\(name)' failed: \(error)")))
            throw error
        }
    }

    /// Waits for `name`'s checkpoint; `isStopping` is polled so a stopping run does not hang.
    func wait(for name: String, isStopping: () -> Bool) throws -> URL {
        condition.lock()
        defer { condition.unlock() }
        while published[name] == nil {
            if isStopping() { throw StageError("the run stopped before '\(name)' produced its checkpoint") }
            _ = condition.wait(until: Date().addingTimeInterval(0.2))
        }
        return try published[name]!.get()
    }
}

/// Where a stage's model comes from: another step of this flow (its checkpoint is awaited), or a
/// checkpoint folder on disk. Decided once, when the flow is assembled.
enum CheckpointSource: Sendable, CustomStringConvertible {
    case step(String)
    case folder(URL)

    func url(_ artifacts: Artifacts, isStopping: () -> Bool) throws -> URL {
        switch self {
        case .step(let name): return try artifacts.wait(for: name, isStopping: isStopping)
        case .folder(let url): return url
        }
    }

    var description: String {
        switch self {
        case .step(let name): return name
        case .folder(let url): return url.path
        }
    }
}
