import Foundation
import XCTest
import Flow

/// A value guarded by a lock, for test bookkeeping across worker threads.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func update<R>(_ body: (inout Value) -> R) -> R { lock.withLock { body(&value) } }
    var current: Value { lock.withLock { value } }
}

struct Boom: Error, CustomStringConvertible {
    let n: Int
    var description: String { "item \(n) is odd" }
}

final class FlowGraphTests: XCTestCase {
    private func numbers(_ graph: FlowGraph, _ count: Int, capacity: Int? = nil) -> Edge<Int> {
        graph.source("numbers", capacity: capacity) { context in
            for i in 0..<count { try context.emit(i) }
        }
    }

    func testLinearChainDeliversEveryItemOnce() throws {
        let graph = FlowGraph(name: "chain")
        let doubled = graph.add("double", ClosureStage<Int, Int> { x, c in try c.emit(2 * x) }, from: numbers(graph, 1000), workers: 3)
        let seen = Locked([Int]())
        graph.sink("collect", ClosureStage<Int, Never> { x, _ in seen.update { $0.append(x) } }, from: doubled)
        let report = try graph.run()
        XCTAssertEqual(report.status, .completed)
        XCTAssertEqual(seen.current.sorted(), (0..<1000).map { 2 * $0 })
        XCTAssertEqual(report.stages.first { $0.name == "double" }?.itemsIn, 1000)
        XCTAssertEqual(report.stages.first { $0.name == "double" }?.itemsOut, 1000)
    }

    func testOrderedStageKeepsInputOrderWithSeveralWorkers() throws {
        let graph = FlowGraph(name: "ordered", defaultCapacity: 4)
        // Items take pseudo-random times, so unordered workers would finish out of order.
        let slow = ClosureStage<Int, Int> { x, c in
            usleep(UInt32((x * 7919) % 5) * 200)
            try c.emit(x); try c.emit(-x)  // several outputs per input stay together
        }
        let out = graph.add("slow", slow, from: numbers(graph, 300), workers: 4, ordered: true)
        let seen = Locked([Int]())
        graph.sink("collect", ClosureStage<Int, Never> { x, _ in seen.update { $0.append(x) } }, from: out)
        let report = try graph.run()
        XCTAssertEqual(report.status, .completed)
        XCTAssertEqual(seen.current, (0..<300).flatMap { [$0, -$0] })
    }

    func testFanOutFeedsEveryBranchAndMergeCollectsThem() throws {
        let graph = FlowGraph(name: "branches")
        let branches = graph.fanOut("scales", numbers(graph, 500), into: 3)
        let scaled = branches.enumerated().map { i, edge in
            graph.add("scale\(i)", ClosureStage<Int, Int> { x, c in try c.emit(x * 1000 + i) }, from: edge, workers: 2)
        }
        let merged = graph.merge("together", scaled)
        let seen = Locked([Int]())
        graph.sink("collect", ClosureStage<Int, Never> { x, _ in seen.update { $0.append(x) } }, from: merged)
        let report = try graph.run()
        XCTAssertEqual(report.status, .completed)
        XCTAssertEqual(seen.current.sorted(), (0..<500).flatMap { x in (0..<3).map { x * 1000 + $0 } }.sorted())
        XCTAssertEqual(report.stages.first { $0.name == "together" }?.itemsIn, 1500)
    }

    func testSkipPolicyReportsEachFailedItemWithItsReason() throws {
        let graph = FlowGraph(name: "skip")
        let checked = graph.add("check", ClosureStage<Int, Int> { x, c in
            if x % 2 == 1 { throw Boom(n: x) }
            try c.emit(x)
        }, from: numbers(graph, 100), workers: 2, onError: .skip)
        let count = Locked(0)
        graph.sink("count", ClosureStage<Int, Never> { _, _ in count.update { $0 += 1 } }, from: checked)
        let report = try graph.run()
        XCTAssertEqual(report.status, .completed)
        XCTAssertEqual(count.current, 50)
        let stage = try XCTUnwrap(report.stages.first { $0.name == "check" })
        XCTAssertEqual(stage.failed, 50)
        XCTAssertTrue(stage.failures.contains { $0.reason == "item 7 is odd" })
        XCTAssertTrue(report.markdown.contains("item 7 is odd"))
    }

    func testFailPolicyStopsTheRunAndStillFinishesEveryStage() throws {
        let graph = FlowGraph(name: "fail", defaultCapacity: 2)
        let checked = graph.add("check", ClosureStage<Int, Int> { x, c in
            if x == 40 { throw Boom(n: x) }
            try c.emit(x)
        }, from: numbers(graph, 100_000), onError: .fail)
        let flushed = Locked(false)
        graph.sink("writer", ClosureStage<Int, Never>({ _, _ in }, finish: { _ in flushed.update { $0 = true } }), from: checked)
        let report = try graph.run()
        XCTAssertEqual(report.status, .failed)
        XCTAssertTrue(report.stopReason?.contains("stage 'check' failed") ?? false, report.stopReason ?? "")
        XCTAssertTrue(flushed.current, "the writer's finish (its flush) must run when the run stops")
        XCTAssertLessThan(report.stages.first { $0.name == "numbers" }!.itemsOut, 100_000)
    }

    func testCancellationStopsCleanlyAndReportsIt() throws {
        let graph = FlowGraph(name: "cancel", defaultCapacity: 4)
        let cancellation = FlowCancellation()
        let slow = graph.add("slow", ClosureStage<Int, Int> { x, c in
            if x == 20 { cancellation.cancel(reason: "interrupted (Ctrl-C)") }
            usleep(500); try c.emit(x)
        }, from: numbers(graph, 1_000_000), workers: 2, ordered: true)
        let flushed = Locked(false)
        graph.sink("writer", ClosureStage<Int, Never>({ _, _ in }, finish: { _ in flushed.update { $0 = true } }), from: slow)
        let report = try graph.run(cancellation: cancellation)
        XCTAssertEqual(report.status, .cancelled)
        XCTAssertEqual(report.stopReason, "interrupted (Ctrl-C)")
        XCTAssertTrue(flushed.current)
        XCTAssertLessThan(report.stages.first { $0.name == "slow" }!.itemsIn, 1000)
    }

    /// A fast producer and a consumer 100× slower: at no time are more items in flight than the
    /// channel bound plus the one item each consumer worker holds.
    func testBackpressureBoundsItemsInFlight() throws {
        let capacity = 8, total = 10_000
        let graph = FlowGraph(name: "backpressure")
        struct Tally { var produced = 0, done = 0, maxInFlight = 0 }
        let tally = Locked(Tally())
        let source: Edge<Int> = graph.source("fast", capacity: capacity) { context in
            for i in 0..<total {
                spin(microseconds: 1)
                try context.emit(i)
                tally.update { $0.produced += 1; $0.maxInFlight = max($0.maxInFlight, $0.produced - $0.done) }
            }
        }
        graph.sink("slow", ClosureStage<Int, Never> { _, _ in
            spin(microseconds: 100)
            tally.update { $0.done += 1 }
        }, from: source)
        let report = try graph.run()
        XCTAssertEqual(tally.current.done, total)
        XCTAssertLessThanOrEqual(tally.current.maxInFlight, capacity + 1, "more items in flight than the bound")
        let slow = try XCTUnwrap(report.stages.first { $0.name == "slow" })
        XCTAssertEqual(slow.queuePeak, capacity, "the producer never filled the queue: backpressure was not exercised")
        let fast = try XCTUnwrap(report.stages.first { $0.name == "fast" })
        XCTAssertGreaterThan(fast.waitingForOutputSeconds, 0.5, "the fast producer should have spent most of its time blocked")
    }

    func testMalformedGraphsAreRejectedBeforeRunning() {
        let graph = FlowGraph(name: "bad")
        let source = numbers(graph, 10)
        _ = graph.add("a", ClosureStage<Int, Int> { x, c in try c.emit(x) }, from: source)
        _ = graph.add("a", ClosureStage<Int, Int> { x, c in try c.emit(x) }, from: source)
        XCTAssertThrowsError(try graph.run()) { error in
            let text = String(describing: error)
            XCTAssertTrue(text.contains("two steps are named 'a'"), text)
            XCTAssertTrue(text.contains("is read by a, a"), text)
            XCTAssertTrue(text.contains("the output of 'a' goes nowhere"), text)
        }
    }

    func testReportIsWrittenAsJSONAndMarkdown() throws {
        let graph = FlowGraph(name: "report")
        graph.sink("count", ClosureStage<Int, Never> { x, c in c.count("seen"); c.record(metric: "last", Double(x)) }, from: numbers(graph, 10))
        let report = try graph.run()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("flow-report-\(UUID())")
        defer { try? FileManager.default.removeItem(at: folder) }
        try report.write(to: folder)
        let decoder = JSONDecoder(); decoder.dateDecodingStrategy = .iso8601; decoder.keyDecodingStrategy = .convertFromSnakeCase
        let keys = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("report.json"))) as? [String: Any])
        XCTAssertNotNil(keys["peak_resident_megabytes"], "snake_case keys: \(keys.keys.sorted())")
        XCTAssertNotNil(keys["started_at"])
        let back = try decoder.decode(FlowReport.self, from: Data(contentsOf: folder.appendingPathComponent("report.json")))
        XCTAssertEqual(back.counters["seen"], 10)
        XCTAssertEqual(back.metrics["last"], 9)
        let markdown = try String(contentsOf: folder.appendingPathComponent("report.md"), encoding: .utf8)
        XCTAssertTrue(markdown.contains("| seen | 10 |"), markdown)
    }
}

/// Busy-waits, so the test's timing does not depend on the scheduler's sleep granularity.
func spin(microseconds: Double) {
    let end = DispatchTime.now().uptimeNanoseconds + UInt64(microseconds * 1000)
    while DispatchTime.now().uptimeNanoseconds < end {}
}
