import Flow
import Foundation
import TileCache

/// What a kind's `make` may ask of the flow being assembled: its own step, the run it belongs to,
/// the flow's other steps, and resources that several steps share (a cache's store and key).
public struct StepAssembly {
    public let step: FlowStep
    public let flow: FlowFile
    public let runFolder: URL
    /// Training steps continue from their `last` checkpoint in the run folder.
    public let resume: Bool
    let shared: AssemblyState

    public var name: String { step.name }
    public var seed: Int { flow.seed }
    var artifacts: Artifacts { shared.artifacts }

    /// Every step of the flow, sources first, in file order (joined once per flow).
    var steps: [FlowStep] { shared.steps }

    /// The steps that read this one.
    var readers: [FlowStep] { steps.filter { $0.from.contains(step.name) } }

    /// A path as the flow gives it: absolute, or relative to the run folder.
    func inRunFolder(_ path: String) -> URL {
        path.hasPrefix("/") ? URL(fileURLWithPath: path) : runFolder.appendingPathComponent(path)
    }

    /// A step of this flow of one of `kinds` named `reference`, or an existing checkpoint folder.
    func checkpoint(_ reference: String, from kinds: [any StageKind.Type]) throws -> CheckpointSource {
        let allowed = kinds.map { "`\($0.name)`" }.joined(separator: " or ")
        if let other = steps.first(where: { $0.name == reference }) {
            guard kinds.contains(where: { $0.name == other.kind.name }) else {
                throw StageError("'\(reference)' is a `\(other.kind.name)` step; a checkpoint comes from a \(allowed) step or a checkpoint folder")
            }
            return .step(reference)
        }
        guard FileManager.default.fileExists(atPath: URL(fileURLWithPath: reference).appendingPathComponent("checkpoint.json").path) else {
            throw StageError("'\(reference)' is neither a \(allowed) step of this flow nor a checkpoint folder (one holding checkpoint.json)")
        }
        return .folder(URL(fileURLWithPath: reference))
    }

    /// The steps before `step`, nearest first, following the first `from` at each step.
    func upstream(of step: FlowStep) -> [FlowStep] {
        var chain: [FlowStep] = []
        var current = step
        let steps = steps
        while let name = current.from.first, let previous = steps.first(where: { $0.name == name }) {
            chain.append(previous)
            current = previous
        }
        return chain
    }

    /// The store and key parameters of the `cache` step `cache`, made once and shared by every
    /// step that asks (the cache itself, and a tiles step that skips reading cached tiles).
    func cachePresence(of cache: FlowStep) throws -> CachePresence {
        if let made = shared.presences[cache.name] { return made }
        let presence: CachePresence
        do {
            let p = try CacheKind.decode(cache.parameters)
            let store = try TileStore(path: p.path, codec: p.compression == "none" ? .none : .zstd)
            presence = CachePresence(store: store, parameters: try CacheKey.parameterFingerprint(upstream(of: cache)))
        } catch where cache.name != step.name {
            // Asked for by another step (a tiles step ahead of the cache): name the cache step too.
            throw StepFailure(step: cache, underlying: error)
        }
        shared.presences[cache.name] = presence
        return presence
    }
}

/// State shared by the steps of one flow while it is assembled.
final class AssemblyState {
    let steps: [FlowStep]
    let artifacts = Artifacts()
    var presences: [String: CachePresence] = [:]

    init(_ flow: FlowFile) { steps = flow.sources + flow.stages }
}

/// Which parameters key a cached tile.
enum CacheKey {
    /// The fingerprint of every parameter that shapes a cached tile: the parameters of the
    /// deterministic steps before the cache whose specs say they shape pixels, and each kind's
    /// `cacheIdentity` (e.g. the stain target file's identity), not the source's location, labels
    /// or shard, nor workers and error policies.
    static func parameterFingerprint(_ chain: [FlowStep]) throws -> UInt64 {
        var values: [String: String] = [:]
        for step in chain {
            guard let kind = StageKinds.named(step.kind.name) else { continue }
            let shaping = Set(kind.parameters.filter(\.shapesPixels).map(\.name))
            for (name, value) in step.parameters.values where shaping.contains(name) {
                values["\(step.kind.name).\(name)"] = value.canonicalText
            }
            for (name, value) in try identity(kind, step.parameters) {
                values["\(step.kind.name).\(name)"] = value
            }
        }
        return Fingerprint.parameters(values)
    }

    private static func identity<K: StageKind>(_ kind: K.Type, _ values: ParameterValues) throws -> [String: String] {
        try kind.cacheIdentity(try kind.decode(values))
    }
}
