import Foundation

/// Drives one stage or source by hand, without a graph (swift-nio's `EmbeddedChannel` idea): the
/// caller hands it items one at a time on its own thread; what it emits, the counters and metrics
/// it records and the failures it reports are kept for a test to read.
///
/// Errors a stage throws for an item come back from `process` as thrown (in a graph, the step's
/// `on_error` policy would record them); failures it reports itself are in `failures`.
public final class StageHarness<Input: Sendable, Output: Sendable>: @unchecked Sendable {
    public let name: String
    private let processBody: ((Input, StageContext<Output>) throws -> Void)?
    private let finishBody: ((StageContext<Output>) throws -> Void)?
    private let produceBody: ((StageContext<Output>) throws -> Void)?
    private let run = RunState()
    private let statistics: StageStatistics
    private let lock = NSLock()
    private var emitted: [Output] = []
    private var contextStorage: StageContext<Output>?

    /// A harness for `stage`.
    public convenience init<S: Stage>(_ stage: S, name: String = "stage", onError: ErrorPolicy = .skip) where S.Input == Input, S.Output == Output {
        self.init(name: name, onError: onError, process: stage.process, finish: stage.finish, produce: nil)
    }

    /// A harness for a source: `produce` runs when `produce()` is called.
    public convenience init(source produce: @escaping (StageContext<Output>) throws -> Void, name: String = "source", onError: ErrorPolicy = .fail)
    where Input == Never {
        self.init(name: name, onError: onError, process: nil, finish: nil, produce: produce)
    }

    private init(name: String, onError: ErrorPolicy, process: ((Input, StageContext<Output>) throws -> Void)?,
                 finish: ((StageContext<Output>) throws -> Void)?, produce: ((StageContext<Output>) throws -> Void)?) {
        self.name = name
        processBody = process
        finishBody = finish
        produceBody = produce
        statistics = StageStatistics(name: name, workers: 1, ordered: true, policy: onError)
    }

    /// The context the stage sees; emitted items are kept in order.
    private var context: StageContext<Output> {
        if let contextStorage { return contextStorage }
        let made = StageContext<Output>(stageName: name, run: run, statistics: statistics, buffered: false) { [unowned self] item in
            guard !run.isStopping else { return false }
            lock.withLock { emitted.append(item) }
            return true
        }
        contextStorage = made
        return made
    }

    /// Hands `item` to the stage.
    public func process(_ item: Input) throws {
        guard let processBody else { throw StageHarnessMisuse("'\(name)' is a source: call produce()") }
        try processBody(item, context)
    }

    /// Hands every item to the stage, then finishes it; returns everything it emitted.
    @discardableResult
    public func run(_ items: [Input]) throws -> [Output] {
        for item in items { try process(item) }
        try finish()
        return outputs
    }

    /// Ends the stage's input: it finishes (a writer flushes, a training stage trains).
    public func finish() throws {
        guard processBody != nil else { throw StageHarnessMisuse("'\(name)' is a source: call produce()") }
        try finishBody?(context)
    }

    /// Runs a source until it has emitted everything; returns what it emitted.
    @discardableResult
    public func produce() throws -> [Output] {
        guard let produceBody else { throw StageHarnessMisuse("'\(name)' is a stage: call process(_:) and finish()") }
        try produceBody(context)
        return outputs
    }

    /// Stops the run the stage belongs to, as Ctrl-C or a failing step would: later `emit`s throw.
    public func stop(reason: String = "stopped by the test") { run.stop(reason: reason, failure: false) }

    /// What the stage emitted so far, in order.
    public var outputs: [Output] { lock.withLock { emitted } }
    /// The run's counters and metrics as the stage recorded them.
    public var counters: [String: Int] { run.snapshot.counters }
    public var metrics: [String: Double] { run.snapshot.metrics }
    /// Pictures the stage attached for the report.
    public var pictures: [FlowReport.Picture] { run.attachedPictures }
    /// Failures the stage reported itself (`reportFailure`).
    public var failures: [FailureRecord] { statistics.report(elapsed: 0).failures }
    /// Why the run stopped (a reported failure under `on_error: fail`, or `stop`), if it did.
    public var stopReason: String? { run.stopReason }
}

/// A harness asked to do what its stage cannot (process items of a source, produce from a stage).
public struct StageHarnessMisuse: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
