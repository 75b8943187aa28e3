import Flow

/// Every kind of source and stage a flow file can name, in the order the documentation lists them.
public enum StageKinds {
    public static let sources: [any StageKind.Type] = [
        SlidesKind.self, ROIFolderKind.self, ImageCSVKind.self, NucleiKind.self, CachedTilesKind.self,
    ]
    public static let stages: [any StageKind.Type] = [
        TissueKind.self, TilesKind.self, DecodeKind.self, StainKind.self, FocusKind.self, CacheKind.self, ExportKind.self,
        PretrainKind.self, FinetuneKind.self, EvaluateSlidesKind.self, SlideMILKind.self,
    ]

    /// The kind a flow file names `name`.
    public static func named(_ name: String) -> (any StageKind.Type)? { byName[name] }

    private static let byName = Dictionary((sources + stages).map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })  // duplicates: declarationProblems

    /// What the flow-file checker validates against.
    public static let catalog = FlowCatalog(sources: sources.map { $0.spec }, stages: stages.map { $0.spec })

    /// Mismatches between each kind's `Parameters` type and its documented parameters: every kind
    /// must decode a value for every parameter, and also only the required ones (optional properties
    /// absent). A misspelt or mistyped property shows here instead of failing a run.
    public static func declarationProblems() -> [String] {
        func sample(_ type: ParameterType) -> ParameterValue {
            switch type {
            case .integer(let range): return .integer(range.lowerBound)
            case .number(let range): return .number(range.lowerBound)
            case .text, .path: return .text("h")
            case .flag: return .flag(true)
            case .numbers(let range): return .numbers([range.lowerBound])
            case .choice(let options): return .text(options[0])
            case .named(let options, let fields):
                return .named(options[0], ParameterValues(Dictionary(uniqueKeysWithValues: fields.map { ($0.name, sample($0.type)) })))
            case .list(let element): return .list([sample(element)])
            }
        }
        func check<K: StageKind>(_ kind: K.Type) -> [String] {
            let all = Dictionary(uniqueKeysWithValues: K.parameters.map { ($0.name, sample($0.type)) })
            let required = all.filter { name, _ in K.parameters.first { $0.name == name }?.optional == false }
            return [all, required].compactMap { values in
                do { _ = try K.decode(ParameterValues(values)); return nil } catch { return "\(error)" }
            }
        }
        var problems = (sources + stages).flatMap { check($0) }
        let names = (sources + stages).map { $0.name }
        if Set(names).count != names.count { problems.append("two kinds share a name: \(names)") }
        return problems
    }
}
