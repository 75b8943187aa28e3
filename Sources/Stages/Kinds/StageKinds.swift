import Flow

/// Every kind of source and stage a flow file can name, in the order the documentation lists them.
public enum StageKinds {
    public static let sources: [any StageKind.Type] = [
        SlidesKind.self, ROIFolderKind.self, ImageCSVKind.self, NucleiKind.self, CachedTilesKind.self,
    ]
    public static let stages: [any StageKind.Type] = [
        TissueKind.self, TilesKind.self, DecodeKind.self, StainKind.self, CacheKind.self, ExportKind.self,
        PretrainKind.self, FinetuneKind.self, EvaluateSlidesKind.self, SlideMILKind.self,
    ]

    /// The kind a flow file names `name`.
    public static func named(_ name: String) -> (any StageKind.Type)? {
        (sources + stages).first { $0.name == name }
    }

    /// What the flow-file checker validates against.
    public static let catalog = FlowCatalog(sources: sources.map { $0.spec }, stages: stages.map { $0.spec })
}
