import Flow
import Foundation
import Tiling

/// A kind of step a flow file can name (`kind: slides`, `- stage: tiles`): what it is called, its
/// documentation and parameters (the catalog, `ssmamba flow docs`), its parameters as a Swift type,
/// the items it reads and emits, and how it is built. A source reads `Never`; a final stage emits
/// `Never`. Adding a kind is one file with a type conforming to this protocol, plus its line in
/// `StageKinds`.
public protocol StageKind {
    /// The step's parameters, decoded from the flow file by `ParameterDecoder`: a property
    /// `minTissue` is the parameter `min_tissue`; optional parameters are optional properties.
    associatedtype Parameters: Decodable
    associatedtype Input: Sendable = Never
    associatedtype Output: Sendable = Never

    /// The name flow files use.
    static var name: String { get }
    /// One paragraph for the catalog.
    static var doc: String { get }
    static var parameters: [ParameterSpec] { get }
    /// When set, the only kinds of step this one may read (the flow check names the line otherwise).
    static var readsOnly: [any StageKind.Type]? { get }
    /// The step streams its tiles' pixels from the cache itself: a `cache` step before it need not read them.
    static var streamsFromCache: Bool { get }
    /// The step may run on several processes (mpirun/srun): it shares its work out, or every rank
    /// may run it alike (the data stages).
    static var runsOnSeveralProcesses: Bool { get }
    /// Text that identifies what the step's files hold, beside its parameters, for the cache key
    /// of the tiles it shapes (e.g. the stain target file's identity).
    static func cacheIdentity(_ parameters: Parameters) throws -> [String: String]

    /// Builds the step; work that can fail on user data before anything runs (opening a cache,
    /// fitting a stain target, listing slides) fails here.
    static func make(_ parameters: Parameters, _ step: StepAssembly) throws -> Built<Input, Output>
}

extension StageKind {
    public static var readsOnly: [any StageKind.Type]? { nil }
    public static var streamsFromCache: Bool { false }
    public static var runsOnSeveralProcesses: Bool { true }
    public static func cacheIdentity(_ parameters: Parameters) throws -> [String: String] { [:] }

    /// The kind as the flow-file checker and the documentation see it.
    public static var spec: StepKind {
        StepKind(name: name, input: (Input.self as? any FlowItem.Type)?.itemName, output: (Output.self as? any FlowItem.Type)?.itemName,
                 doc: doc, parameters: parameters, readsOnly: readsOnly?.map { $0.name })
    }

    /// `values` (checked against `parameters` and completed with defaults) as `Parameters`.
    static func decode(_ values: ParameterValues) throws -> Parameters {
        try ParameterDecoder.decode(Parameters.self, from: values, specs: parameters, kind: name)
    }
}

/// An item that flows between steps, named as flow files and error messages name it.
public protocol FlowItem: Sendable {
    static var itemName: String { get }
}

extension SlideItem: FlowItem { public static var itemName: String { "slide" } }
extension ImageItem: FlowItem { public static var itemName: String { "image" } }
extension Tile: FlowItem { public static var itemName: String { "tile" } }

/// What a kind builds: a source's producer, or a stage reading the step's input.
public struct Built<Input: Sendable, Output: Sendable> {
    enum Body {
        /// Emits every item, then returns.
        case source(@Sendable (StageContext<Output>) throws -> Void)
        /// With `oneWorker`, the step's `workers` is not used (a stage that keeps its items in arrival order).
        case stage(ClosureStage<Input, Output>, oneWorker: Bool)
    }
    let body: Body

    /// A source: `produce` emits every item, then returns.
    public static func source(_ produce: @escaping @Sendable (StageContext<Output>) throws -> Void) -> Built where Input == Never {
        Built(body: .source(produce))
    }

    /// A stage; with `oneWorker`, the step's `workers` is not used. A stage emitting `Never` ends a
    /// branch of the flow.
    public static func stage<S: Stage>(_ stage: S, oneWorker: Bool = false) -> Built where S.Input == Input, S.Output == Output {
        Built(body: .stage(ClosureStage(stage.process, finish: stage.finish), oneWorker: oneWorker))
    }
}
