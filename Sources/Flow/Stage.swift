/// One step of a flow: takes items of one type and emits zero or more items of another.
///
/// Contract: `process` may be called from several worker threads at once when the stage runs with
/// more than one worker, so a stage with mutable state either runs with one worker or guards its
/// state. `finish` is called once after the last input (also when the run is stopping, so a
/// writer can flush); it may emit trailing items such as a last partial batch.
public protocol Stage: Sendable {
    associatedtype Input: Sendable
    associatedtype Output: Sendable
    func process(_ input: Input, _ context: StageContext<Output>) throws
    func finish(_ context: StageContext<Output>) throws
}

extension Stage {
    public func finish(_ context: StageContext<Output>) throws {}
}

/// A stage made from a closure, for small steps and tests.
public struct ClosureStage<Input: Sendable, Output: Sendable>: Stage {
    private let body: @Sendable (Input, StageContext<Output>) throws -> Void
    private let finishBody: (@Sendable (StageContext<Output>) throws -> Void)?

    public init(
        _ body: @escaping @Sendable (Input, StageContext<Output>) throws -> Void,
        finish: (@Sendable (StageContext<Output>) throws -> Void)? = nil
    ) {
        self.body = body
        self.finishBody = finish
    }

    public func process(_ input: Input, _ context: StageContext<Output>) throws { try body(input, context) }
    public func finish(_ context: StageContext<Output>) throws { try finishBody?(context) }
}

/// What to do when a stage throws on one item.
public enum ErrorPolicy: String, Sendable, Codable, CaseIterable {
    /// Record the item and the reason in the report, then go on with the next item.
    case skip
    /// Stop the whole run; the report still gets written.
    case fail
}
