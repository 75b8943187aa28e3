import Diagnostics
import Flow
import Foundation

/// Turns a validated flow file into a runnable graph: each step is built by its kind
/// (`StageKinds`) and wired to the steps it reads; fan-out and merges come from `from:`.
public enum FlowAssembler {
    /// A typed edge whose item type is known only at run time, with what can be done to it.
    struct AnyEdge {
        let itemType: Any.Type
        let edge: Any
        let fanOut: (FlowGraph, String, Int) -> [AnyEdge]
        let merge: (FlowGraph, String, [AnyEdge]) throws -> AnyEdge
        let drop: (FlowGraph, String) -> Void

        init<T: Sendable>(_ edge: Edge<T>) {
            itemType = T.self
            self.edge = edge
            fanOut = { graph, name, count in graph.fanOut(name, edge, into: count).map { AnyEdge($0) } }
            merge = { graph, name, edges in AnyEdge(graph.merge(name, try edges.map { try $0.typed(T.self) })) }
            drop = { graph, name in graph.sink(name, ClosureStage<T, Never> { _, _ in }, from: edge) }
        }

        /// The edge as carrying `T`; the flow check has matched every reader's input to its writer's
        /// output, so a mismatch is a bug, reported rather than trapped.
        func typed<T>(_: T.Type) throws -> Edge<T> {
            guard let typed = edge as? Edge<T> else {
                throw StageError(.bug, "", "an edge of \(itemType) items was wired to a step that reads \(T.self) (a bug: please report it)")
            }
            return typed
        }
    }

    /// Builds the graph of `flow`, writing run outputs under `runFolder`. Work that can fail on
    /// user data before anything runs fails here, naming the step and its line in the flow file.
    /// With `resume`, training stages continue from their `last` checkpoint in `runFolder`.
    public static func build(_ flow: FlowFile, runFolder: URL, resume: Bool = false) throws -> FlowGraph {
        let graph = FlowGraph(name: flow.name)
        let shared = AssemblyState(flow)
        let steps = shared.steps
        var readers: [String: Int] = [:]
        for step in steps { for from in step.from { readers[from, default: 0] += 1 } }
        var outputs: [String: [AnyEdge]] = [:]  // one edge per reader, handed out in order

        for step in steps {
            do {
                guard let kind = StageKinds.named(step.kind.name) else {
                    throw StageError(.bug, "", "no stage kind '\(step.kind.name)' (a bug: the flow check knows it)")
                }
                var input: AnyEdge?
                if !step.from.isEmpty {
                    let edges = step.from.map { outputs[$0]!.removeFirst() }
                    input = edges.count == 1 ? edges[0] : try edges[0].merge(graph, "\(step.name).merge", edges)
                }
                let assembly = StepAssembly(step: step, flow: flow, runFolder: runFolder, resume: resume, shared: shared)
                guard let output = try attach(kind, assembly, input: input, to: graph) else { continue }
                switch readers[step.name] ?? 0 {
                case 0: output.drop(graph, "\(step.name).out")
                case 1: outputs[step.name] = [output]
                case let count: outputs[step.name] = output.fanOut(graph, "\(step.name).fan-out", count)
                }
            } catch {
                throw StepFailure(step: step, underlying: error)
            }
        }
        return graph
    }

    /// Builds one step of kind `K` and adds it to `graph`; its output edge, if it has one.
    private static func attach<K: StageKind>(_ kind: K.Type, _ assembly: StepAssembly, input: AnyEdge?, to graph: FlowGraph) throws -> AnyEdge? {
        let step = assembly.step
        switch try K.make(try K.decode(step.parameters), assembly).body {
        case .source(let produce):
            return AnyEdge(graph.source(step.name, onError: step.onError, produce: produce))
        case .stage(let stage, let oneWorker):
            guard let input else { throw StageError(.bug, step.name, "reads nothing (a bug: the flow check gives every stage an input)") }
            let edge = try input.typed(K.Input.self), workers = oneWorker ? 1 : step.workers
            if K.Output.self == Never.self {
                graph.sink(step.name, stage, from: edge, workers: workers, onError: step.onError)
                return nil
            }
            return AnyEdge(graph.add(step.name, stage, from: edge, workers: workers, ordered: true, onError: step.onError))
        }
    }
}

/// A step that could not be built: its place in the flow file and name, with the error as thrown
/// (its type kept, so callers can still tell a damaged cache from a missing slide).
public struct StepFailure: Problem {
    public let location: FlowFileLocation
    public let step: String
    public let kind: String
    public let underlying: any Error

    init(step: FlowStep, underlying: any Error) {
        (location, self.step, kind, self.underlying) = (step.location, step.name, step.kind.name, underlying)
    }

    public var kindName: String { (underlying as? any Problem)?.kindName ?? "stepFailed" }
    public var subject: String { "\(location)" }
    public var message: String { "\(kind == step ? "" : "'\(step)' ")(\(kind)): \(underlying)" }
}

