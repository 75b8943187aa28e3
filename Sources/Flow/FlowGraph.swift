import Foundation

/// A problem with the shape of a graph, found before anything runs.
public struct FlowGraphError: Error, CustomStringConvertible {
    public let problems: [String]
    public var description: String { "the flow graph cannot run:\n" + problems.map { "  - \($0)" }.joined(separator: "\n") }
}

/// A graph of sources, stages and sinks connected by bounded channels, run on threads.
///
/// Build it with `source`, `add`, `fanOut`, `merge` and `sink`, then `run()` once. Every edge must
/// be consumed exactly once. Each stage runs `workers` threads; an ordered stage hands its outputs
/// over in input order, an unordered one as soon as they are ready. Each edge holds at most
/// `capacity` items, so at most `capacity` + the consumer's workers are in flight on any edge.
public final class FlowGraph: @unchecked Sendable {
    public let name: String
    /// The default bound of every channel.
    public var defaultCapacity: Int
    private var nodes: [Node] = []
    private var edges: [(producer: String, consumers: () -> [String])] = []
    private var names: Set<String> = []
    private var problems: [String] = []

    public init(name: String, defaultCapacity: Int = 16) {
        self.name = name
        self.defaultCapacity = defaultCapacity
    }

    // MARK: building

    /// A source: `produce` emits every item, then returns.
    public func source<T: Sendable>(
        _ name: String, capacity: Int? = nil, onError: ErrorPolicy = .fail,
        produce: @escaping @Sendable (StageContext<T>) throws -> Void
    ) -> Edge<T> {
        let output = makeEdge(T.self, producer: name, capacity: capacity)
        let statistics = register(name, workers: 1, ordered: true, policy: onError)
        nodes.append(Node(statistics: statistics, cancel: { output.channel.cancel() }) { run in
            let context = Self.context(name, run, statistics, buffered: false, output: output)
            let start = DispatchTime.now().uptimeNanoseconds
            do { try produce(context) } catch is FlowStopped {} catch {
                Self.handle(error, item: "source", statistics: statistics, run: run)
            }
            statistics.worked(Self.seconds(since: start))
            output.channel.finishProducing()
        })
        return output
    }

    /// A stage reading `input` and producing a new edge.
    public func add<S: Stage>(
        _ name: String, _ stage: S, from input: Edge<S.Input>, workers: Int = 1, ordered: Bool = false,
        onError: ErrorPolicy = .skip, capacity: Int? = nil
    ) -> Edge<S.Output> {
        let output = makeEdge(S.Output.self, producer: name, capacity: capacity)
        attach(name, stage, input: input, workers: workers, ordered: ordered, policy: onError, output: output)
        return output
    }

    /// A final stage: its outputs, if any, are counted and dropped.
    public func sink<S: Stage>(
        _ name: String, _ stage: S, from input: Edge<S.Input>, workers: Int = 1, ordered: Bool = false,
        onError: ErrorPolicy = .skip
    ) {
        attach(name, stage, input: input, workers: workers, ordered: ordered, policy: onError, output: nil)
    }

    /// Fan-out: every item of `input` goes to each of `count` new edges (one decoded tile to several
    /// branches). The slowest branch sets the pace.
    public func fanOut<T: Sendable>(_ name: String, _ input: Edge<T>, into count: Int, capacity: Int? = nil) -> [Edge<T>] {
        consume(input, by: name)
        let outputs = (0..<count).map { i in makeEdge(T.self, producer: "\(name)[\(i)]", capacity: capacity) }
        let statistics = register(name, workers: 1, ordered: true, policy: .fail)
        statistics.inputOccupancy = Self.occupancy(of: input.channel)
        nodes.append(Node(statistics: statistics, cancel: { input.channel.cancel(); outputs.forEach { $0.channel.cancel() } }) { run in
            while true {
                let (item, waited) = input.channel.receive()
                guard let item else { break }
                statistics.received(waited: waited)
                for output in outputs {
                    let (delivered, waitedOut) = output.channel.send(item)
                    if !delivered { break }
                    statistics.emitted(waited: waitedOut)
                }
            }
            outputs.forEach { $0.channel.finishProducing() }
        })
        return outputs
    }

    /// Fan-in: the items of all `inputs` in one edge, in whatever order they arrive.
    public func merge<T: Sendable>(_ name: String, _ inputs: [Edge<T>], capacity: Int? = nil) -> Edge<T> {
        let output = makeEdge(T.self, producer: name, capacity: capacity, producers: inputs.count)
        inputs.forEach { consume($0, by: name) }
        let statistics = register(name, workers: inputs.count, ordered: false, policy: .fail)
        let readers = inputs.map { Self.occupancy(of: $0.channel) }
        statistics.inputOccupancy = {
            var total = (now: 0, peak: 0, capacity: 0)
            for reader in readers {
                let o = reader()
                total = (total.now + o.now, total.peak + o.peak, total.capacity + o.capacity)
            }
            return total
        }
        for input in inputs {
            nodes.append(Node(statistics: statistics, cancel: { input.channel.cancel(); output.channel.cancel() }) { run in
                while true {
                    let (item, waited) = input.channel.receive()
                    guard let item else { break }
                    statistics.received(waited: waited)
                    let (delivered, waitedOut) = output.channel.send(item)
                    if !delivered { break }
                    statistics.emitted(waited: waitedOut)
                }
                output.channel.finishProducing()
            })
        }
        return output
    }

    // MARK: running

    /// Runs the graph to completion, to a failure under `on_error: fail`, or until `cancellation`
    /// fires. Stages always get `finish` called, and the report covers every stage either way.
    /// - Parameter progress: called about every `progressInterval` seconds with a snapshot.
    /// - Throws: `FlowGraphError` if the graph is malformed (nothing has run then).
    public func run(
        cancellation: FlowCancellation? = nil, progressInterval: Double = 0.5,
        progress: (@Sendable (FlowReport) -> Void)? = nil
    ) throws -> FlowReport {
        var found = problems
        for edge in edges {
            let consumers = edge.consumers()
            if consumers.isEmpty { found.append("the output of '\(edge.producer)' goes nowhere (add a stage or sink reading it)") }
            if consumers.count > 1 {
                found.append("the output of '\(edge.producer)' is read by \(consumers.joined(separator: ", ")): use a fan-out to feed several stages")
            }
        }
        if nodes.isEmpty { found.append("the flow has no stages") }
        guard found.isEmpty else { throw FlowGraphError(problems: found) }

        let run = RunState()
        let startedAt = Date()
        let start = DispatchTime.now().uptimeNanoseconds
        for node in nodes { run.whenStopping(node.cancel) }
        cancellation?.attach(run)

        let group = DispatchGroup()
        for node in nodes {
            group.enter()
            let thread = Thread { node.body(run); group.leave() }
            thread.stackSize = 16 << 20
            thread.start()
        }
        let statistics = nodes.map(\.statistics)
        var seen = Set<ObjectIdentifier>()
        let unique = statistics.filter { seen.insert(ObjectIdentifier($0)).inserted }
        func snapshot(final: Bool = false) -> FlowReport {
            let elapsed = Self.seconds(since: start)
            let (counters, metrics) = run.snapshot
            let stages = unique.map { $0.report(elapsed: elapsed) }
            var status: FlowReport.Status = run.stopReason == nil ? .completed : (run.failed ? .failed : .cancelled)
            var reason = run.stopReason
            // A stage none of whose items succeeded produced nothing: the run did not do its job.
            if final, status == .completed, let stage = stages.first(where: { $0.failed > 0 && $0.failed >= $0.itemsIn && $0.itemsOut == 0 }) {
                status = .failed
                reason = "every item of stage '\(stage.name)' failed (\(stage.failed)); see the failures below"
            }
            var report = FlowReport(flow: name, status: status, stopReason: reason, startedAt: startedAt, seconds: elapsed,
                                    stages: stages, counters: counters, metrics: metrics)
            report.peakResidentMegabytes = Self.peakResidentMegabytes()
            report.pictures = run.attachedPictures
            return report
        }
        if let progress {
            while group.wait(timeout: .now() + progressInterval) == .timedOut { progress(snapshot()) }
        } else {
            group.wait()
        }
        return snapshot(final: true)
    }

    // MARK: internals

    private struct Node: Sendable {
        let statistics: StageStatistics
        let cancel: @Sendable () -> Void
        let body: @Sendable (RunState) -> Void
    }

    private func makeEdge<T>(_: T.Type, producer: String, capacity: Int?, producers: Int = 1) -> Edge<T> {
        let capacity = capacity ?? defaultCapacity
        if capacity < 1 { problems.append("'\(producer)': a queue capacity must be at least 1 (got \(capacity))") }
        let edge = Edge<T>(producer: producer, capacity: max(1, capacity), producers: producers)
        edges.append((producer, { edge.consumers }))
        return edge
    }

    private func consume<T>(_ edge: Edge<T>, by name: String) { edge.consumers.append(name) }

    private func register(_ name: String, workers: Int, ordered: Bool, policy: ErrorPolicy) -> StageStatistics {
        if !names.insert(name).inserted { problems.append("two steps are named '\(name)': names must be unique") }
        if workers < 1 { problems.append("'\(name)': workers must be at least 1 (got \(workers))") }
        return StageStatistics(name: name, workers: max(1, workers), ordered: ordered, policy: policy)
    }

    private func attach<S: Stage>(
        _ name: String, _ stage: S, input: Edge<S.Input>, workers: Int, ordered: Bool, policy: ErrorPolicy,
        output: Edge<S.Output>?
    ) {
        consume(input, by: name)
        // One worker hands items over in order anyway: no turnstile for it. (`register` reports a
        // worker count below 1 as a problem of the graph.)
        let statistics = register(name, workers: workers, ordered: ordered && workers > 1, policy: policy)
        let workers = statistics.workers, ordered = statistics.ordered
        statistics.inputOccupancy = Self.occupancy(of: input.channel)
        let turnstile = Turnstile()
        let receiveLock = NSLock()
        let sequence = Counter()
        let finishedWorkers = Counter()
        let worker = Node(statistics: statistics, cancel: { input.channel.cancel(); output?.channel.cancel(); turnstile.cancel() }) { run in
            let context = Self.context(name, run, statistics, buffered: ordered, output: output)
            while !run.isStopping {
                receiveLock.lock()
                let (item, waited) = input.channel.receive()
                let number = sequence.next()
                receiveLock.unlock()
                guard let item else { break }
                statistics.received(waited: waited)
                let started = DispatchTime.now().uptimeNanoseconds
                var stopped = false
                do { try stage.process(item, context) } catch is FlowStopped { stopped = true } catch {
                    Self.handle(error, item: Self.describe(item, number), statistics: statistics, run: run)
                    if ordered { context.discardPending() }
                }
                statistics.worked(Self.seconds(since: started))
                if ordered {
                    guard turnstile.waitForTurn(number) else { break }
                    let delivered = context.flush()
                    turnstile.advance()
                    if !delivered { break }
                }
                if stopped { break }
            }
            // The last worker to leave finishes the stage and ends its output.
            if finishedWorkers.next() == workers - 1 {
                let closing = Self.context(name, run, statistics, buffered: false, output: output)
                let finishing = DispatchTime.now().uptimeNanoseconds
                // A stage's finish is its whole product (a model, a file): losing it fails the run.
                do { try stage.finish(closing) } catch is FlowStopped {} catch {
                    Self.handle(RunCannotContinue(error), item: "end of input", statistics: statistics, run: run)
                }
                statistics.worked(Self.seconds(since: finishing))  // training stages work here
                statistics.markFinished()
                output?.channel.finishProducing()
            }
        }
        // One thread per worker, all running the same loop.
        nodes += Array(repeating: worker, count: workers)
    }

    private static func context<T>(
        _ name: String, _ run: RunState, _ statistics: StageStatistics, buffered: Bool, output: Edge<T>?
    ) -> StageContext<T> {
        StageContext(stageName: name, run: run, statistics: statistics, buffered: buffered) { item in
            guard let output else { statistics.emitted(waited: 0); return true }
            let (delivered, waited) = output.channel.send(item)
            if delivered { statistics.emitted(waited: waited) }
            return delivered
        }
    }

    private static func handle(_ error: Error, item: String, statistics: StageStatistics, run: RunState) {
        StageContext<Never>.recordFailure(statistics: statistics, run: run, item: item, reason: String(describing: error))
        if error is RunCannotContinue {
            run.stop(reason: "stage '\(statistics.name)' cannot go on (\(item)): \(error)", failure: true)
        }
    }

    private static func describe<T>(_ item: T, _ number: Int) -> String {
        if let named = item as? CustomStringConvertible { return String(named.description.prefix(300)) }
        return "item #\(number)"
    }

    private static func occupancy<T>(of channel: BoundedChannel<T>) -> () -> (now: Int, peak: Int, capacity: Int) {
        { let o = channel.occupancy; return (o.now, o.peak, channel.capacity) }
    }

    /// This process's peak resident memory: VmHWM of /proc/self/status (the high-water mark of
    /// this program's memory). getrusage's ru_maxrss is the fallback: it carries the parent's
    /// resident size at fork across exec, so a small run started by a large process reports the
    /// parent's size.
    static func peakResidentMegabytes() -> Double {
        if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
           let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
           let kilobytes = Double(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") {
            return kilobytes / 1024
        }
        var usage = rusage()
        return getrusage(Int32(RUSAGE_SELF.rawValue), &usage) == 0 ? Double(usage.ru_maxrss) / 1024 : 0  // KB on Linux
    }

    static func seconds(since start: UInt64) -> Double {
        Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
    }
}

/// A thread-safe counter handing out 0, 1, 2, …
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func next() -> Int { lock.withLock { defer { value += 1 }; return value } }
}
