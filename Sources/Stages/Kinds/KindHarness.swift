import Flow
import Foundation

/// Builds one step of a flow as a run would (its parameters checked and decoded, made by its
/// kind) and puts it in a `StageHarness`, so a test drives a single stage kind with items.
public enum KindHarness {
    /// The step named `step` of the flow `text` (a whole flow file, checked like any other), with
    /// the item types the caller expects of its kind (`Never` as the input of a source).
    public static func make<Input: Sendable, Output: Sendable>(step name: String, in text: String, runFolder: URL,
                                                               resume: Bool = false) throws -> StageHarness<Input, Output> {
        let flow = try FlowFile.parse(text, path: "harness.yaml", catalog: StageKinds.catalog)
        guard let step = (flow.sources + flow.stages).first(where: { $0.name == name }), let kind = StageKinds.named(step.kind.name) else {
            throw StageError("the flow has no step named '\(name)'")
        }
        let assembly = StepAssembly(step: step, flow: flow, runFolder: runFolder, resume: resume, shared: AssemblyState(flow))
        let (made, items) = try make(kind, assembly)
        guard let harness = made as? StageHarness<Input, Output> else {
            throw StageError("'\(name)' is a `\(kind.name)` step, which \(items), not \(Input.self) → \(Output.self)")
        }
        return harness
    }

    /// The harness of the step, and what it reads and emits in words.
    private static func make<K: StageKind>(_ kind: K.Type, _ assembly: StepAssembly) throws -> (Any, String) {
        let step = assembly.step, items = "reads \(K.Input.self) and emits \(K.Output.self)"
        switch try K.make(try K.decode(step.parameters), assembly).body {
        case .source(let produce):
            return (StageHarness<Never, K.Output>(source: produce, name: step.name, onError: step.onError), items)
        case .stage(let stage, _):
            return (StageHarness(stage, name: step.name, onError: step.onError), items)
        }
    }
}
