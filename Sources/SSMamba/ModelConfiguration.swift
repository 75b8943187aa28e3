import Diagnostics

/// Every architectural choice of SSMamba as a field, so the published recipe can be matched once
/// known (docs/MODEL.md marks what is confirmed, inferred or our default). Saved beside checkpoints.
public struct ModelConfiguration: Codable, Sendable, Equatable {
    public var name: String
    public var imageSize: Int = 224
    public var patchSize: Int = 16
    public var channels: Int = 3
    public var dim: Int = 192
    public var depth: Int = 12
    public var stateSize: Int = 16
    public var expand: Int = 2
    /// Scan orders of each DMS block (names as `ScanDirection(name:)` parses them).
    public var directions: [String] = ["h", "h_flip", "v", "v_flip", "w2", "w2_flip"]
    /// Kernel sizes of the DMS local path; several are summed (the multi-scale variant).
    public var localKernels: [Int] = [3]
    /// The DMS local path's padding: "same" (non-causal, the SSMamba default) or causal (Vim).
    public var localPadding: DepthwiseConv1D.Padding = .same
    /// Whether each scan direction has its own local path run along its visiting order (Vim's form:
    /// a vertical scan convolves vertical neighbours) instead of one shared in storage order.
    public var localPerDirection = false
    /// How direction outputs combine: mean (default), sum, or learned softmax weights.
    public var merge: DirectionalMultiScale.Merge = .mean
    /// How many of the last blocks use self-attention instead of DMS (docs/MODEL.md: the last quarter).
    public var attentionBlocks: Int = 3
    public var heads: Int = 3
    /// MLP hidden width as a multiple of dim; 0 means no MLP sub-block.
    public var mlpRatio: Int = 0
    public var useLPR: Bool = true
    public var dropPathRate: Float = 0.1
    public var headDropout: Float = 0
    public var classes: Int = 9
    public var scanMemory: SelectiveScan.MemoryMode = .recompute

    /// Plain (R2: patch embedding, `depth` blocks on one grid) or hierarchical (R1, MambaVision-T-
    /// like: a convolutional stem to 1/4 of the side, then levels of widths dim·2ⁱ, each after the
    /// first opening with a stride-2 convolution; the first `convolutionLevels` levels of
    /// convolutional blocks, the others of SSMamba blocks). The `level…` fields apply to R1 only.
    public enum Layout: String, Codable, Sendable { case plain, hierarchical }
    public var layout: Layout = .plain
    public var levelDepths: [Int] = [1, 3, 8, 4]
    public var levelHeads: [Int] = [2, 4, 8, 16]
    /// Self-attention blocks at the end of each level (MambaVision: the second half of levels 3–4).
    public var levelAttentionBlocks: [Int] = [0, 0, 4, 2]
    public var convolutionLevels: Int = 2

    public init(name: String) { self.name = name }

    /// Reads a configuration; fields it does not name keep their defaults, so configurations saved
    /// before a field existed still load.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(name: try c.decode(String.self, forKey: .name))
        func read<T: Decodable>(_ key: CodingKeys, _ value: inout T) throws {
            if let found = try c.decodeIfPresent(T.self, forKey: key) { value = found }
        }
        try read(.imageSize, &imageSize); try read(.patchSize, &patchSize); try read(.channels, &channels)
        try read(.dim, &dim); try read(.depth, &depth); try read(.stateSize, &stateSize); try read(.expand, &expand)
        try read(.directions, &directions); try read(.localKernels, &localKernels); try read(.localPadding, &localPadding); try read(.localPerDirection, &localPerDirection)
        try read(.merge, &merge); try read(.attentionBlocks, &attentionBlocks); try read(.heads, &heads)
        try read(.mlpRatio, &mlpRatio); try read(.useLPR, &useLPR); try read(.dropPathRate, &dropPathRate)
        try read(.headDropout, &headDropout); try read(.classes, &classes); try read(.scanMemory, &scanMemory)
        try read(.layout, &layout); try read(.levelDepths, &levelDepths); try read(.levelHeads, &levelHeads)
        try read(.levelAttentionBlocks, &levelAttentionBlocks); try read(.convolutionLevels, &convolutionLevels)
    }

    /// Width of the encoder's output tokens: dim, or the last level's dim·2^(levels−1).
    public var outputWidth: Int { layout == .plain ? dim : dim << (levelDepths.count - 1) }

    /// Side of the encoder's output grid: the patch grid, or R1's last level.
    public var outputSide: Int { layout == .hierarchical ? levelSides.last! : gridSide }

    /// R1: the grid side of each level. Every stride-2 convolution maps a side s to ⌈s/2⌉; the
    /// stem has two, each level after the first one more.
    public var levelSides: [Int] {
        func halved(_ side: Int) -> Int { (side + 1) / 2 }
        var side = halved(halved(imageSize))
        return levelDepths.indices.map { i in
            if i > 0 { side = halved(side) }
            return side
        }
    }

    public var gridSide: Int { imageSize / patchSize }
    public var tokens: Int { gridSide * gridSide }

    /// The parsed scan directions; errors name the bad entry.
    public func scanDirections() throws -> [ScanDirection] {
        try directions.map { name in
            guard let d = ScanDirection(name: name) else {
                throw ConfigurationError("unknown scan direction '\(name)'; use h, v or wK (K ≥ 1), each optionally with _flip")
            }
            return d
        }
    }

    /// Checks every field is within bounds (a configuration can come from a damaged or hostile
    /// checkpoint: sizes are bounded before any allocation uses them) and that the fields fit
    /// together, with an error naming the field.
    public func validate() throws {
        func require(_ ok: Bool, _ message: String) throws { if !ok { throw ConfigurationError(message) } }
        func bounded(_ value: Int, _ range: ClosedRange<Int>, _ field: String) throws {
            try require(range.contains(value), "\(field) \(value) is outside \(range.lowerBound)…\(range.upperBound)")
        }
        try bounded(imageSize, 8...4096, "imageSize"); try bounded(patchSize, 1...256, "patchSize"); try bounded(channels, 1...16, "channels")
        try bounded(dim, 1...8192, "dim"); try bounded(depth, 1...512, "depth"); try bounded(stateSize, 1...256, "stateSize")
        try bounded(expand, 1...8, "expand"); try bounded(heads, 1...256, "heads"); try bounded(mlpRatio, 0...16, "mlpRatio")
        try bounded(classes, 1...100_000, "classes"); try bounded(attentionBlocks, 0...512, "attentionBlocks")
        try bounded(directions.count, 1...64, "the number of directions"); try bounded(localKernels.count, 1...8, "the number of localKernels")
        for k in localKernels { try bounded(k, 1...63, "a local kernel") }
        try bounded(levelDepths.count, 1...8, "the number of levels")
        for d in levelDepths + levelHeads + levelAttentionBlocks { try bounded(d, 0...512, "a level's depth, heads or attention blocks") }
        try bounded(convolutionLevels, 0...8, "convolutionLevels")
        try require(dim * expand * stateSize <= 1 << 24 && (dim << max(0, levelDepths.count - 1)) <= 1 << 16,
                    "dim \(dim) × expand \(expand) × stateSize \(stateSize) is too large for one layer")
        try require(dropPathRate.isFinite && headDropout.isFinite, "drop rates must be finite")
        try require(patchSize > 0 && imageSize > 0 && imageSize % patchSize == 0, "imageSize \(imageSize) must be a positive multiple of patchSize \(patchSize)")
        try require(dim > 0 && depth > 0 && stateSize > 0 && expand > 0, "dim, depth, stateSize and expand must be positive")
        if layout == .plain {
            try require(attentionBlocks >= 0 && attentionBlocks <= depth, "attentionBlocks \(attentionBlocks) must be within 0…depth (\(depth))")
            try require(attentionBlocks == 0 || (heads > 0 && dim % heads == 0), "dim \(dim) must be divisible by heads \(heads)")
        }
        try require(!localKernels.isEmpty && localKernels.allSatisfy { $0 > 0 && $0 % 2 == 1 }, "localKernels must be odd sizes, got \(localKernels)")
        try require(!directions.isEmpty, "directions must name at least one scan order")
        if layout == .hierarchical {
            let levels = levelDepths.count
            try require(levels > 0 && levelHeads.count == levels && levelAttentionBlocks.count == levels,
                        "levelDepths, levelHeads and levelAttentionBlocks must have one entry per level")
            try require(convolutionLevels >= 0 && convolutionLevels <= levels, "convolutionLevels must be within 0…\(levels)")
            try require(imageSize % (4 << (levels - 1)) == 0, "imageSize \(imageSize) must be a multiple of \(4 << (levels - 1)) for \(levels) levels")
            for i in 0..<levels {
                try require(levelDepths[i] > 0, "levelDepths must be positive, got \(levelDepths)")
                try require(levelAttentionBlocks[i] >= 0 && levelAttentionBlocks[i] <= levelDepths[i],
                            "levelAttentionBlocks[\(i)] must be within 0…\(levelDepths[i])")
                try require(levelHeads[i] > 0 && (dim << i) % levelHeads[i] == 0, "level \(i) width \(dim << i) must be divisible by its heads \(levelHeads[i])")
            }
        }
        try require(classes > 0, "classes must be positive")
        try require(dropPathRate >= 0 && dropPathRate < 1 && headDropout >= 0 && headDropout < 1, "drop rates must be in [0, 1)")
        _ = try scanDirections()
    }

    /// The fields in which `other` builds a different network (its weights do not fit this one):
    /// everything but the name, the class count and the training-time rates and memory mode.
    public func architectureDifferences(from other: ModelConfiguration) -> [String] {
        var a = self, b = other
        for c in [\ModelConfiguration.name] { a[keyPath: c] = ""; b[keyPath: c] = "" }
        (a.classes, b.classes) = (0, 0)
        (a.dropPathRate, b.dropPathRate, a.headDropout, b.headDropout) = (0, 0, 0, 0)
        (a.scanMemory, b.scanMemory) = (.recompute, .recompute)
        guard a != b else { return [] }
        let mirrorA = Mirror(reflecting: a), mirrorB = Mirror(reflecting: b)
        return zip(mirrorA.children, mirrorB.children).compactMap { x, y in
            "\(x.value)" == "\(y.value)" ? nil : "\(x.label ?? "?") \(y.value) → \(x.value)"
        }
    }

    /// Named configurations (timm-style registry).
    public static let registry: [String: ModelConfiguration] = {
        var tiny = ModelConfiguration(name: "ssmamba_tiny")
        tiny.dim = 192
        tiny.heads = 3
        var small = ModelConfiguration(name: "ssmamba_small")
        small.dim = 384
        small.heads = 6
        // A small model for 64-px inputs (patch 8 → 8×8 tokens), quick enough for tests and demos on CPUs.
        var micro = ModelConfiguration(name: "ssmamba_micro")
        micro.imageSize = 64
        micro.patchSize = 8
        micro.dim = 64
        micro.depth = 4
        micro.attentionBlocks = 1
        micro.heads = 2
        micro.dropPathRate = 0
        // R1, MambaVision-T-like: widths 80-160-320-640, depths 1-3-8-4, MLP ratio 4.
        var hierarchical = ModelConfiguration(name: "ssmamba_r1_tiny")
        hierarchical.layout = .hierarchical
        hierarchical.dim = 80
        hierarchical.mlpRatio = 4
        hierarchical.dropPathRate = 0.2
        // The 64-px form of tiny: patch 8 (8×8 tokens), dim 192, depth 12, four scan directions
        // (h, v and their flips), attention in the last 3 blocks.
        var tiny64 = ModelConfiguration(name: "ssmamba_tiny_64")
        tiny64.imageSize = 64
        tiny64.patchSize = 8
        tiny64.directions = ["h", "h_flip", "v", "v_flip"]
        return [tiny.name: tiny, small.name: small, micro.name: micro, hierarchical.name: hierarchical, tiny64.name: tiny64]
    }()

    public static func named(_ name: String) throws -> ModelConfiguration {
        guard let config = registry[name] else {
            throw ConfigurationError("unknown model '\(name)'; known: \(registry.keys.sorted().joined(separator: ", "))")
        }
        return config
    }
}

/// A model configuration that cannot be built (its message names the field and the allowed values).
public struct ConfigurationError: Problem {
    public let message: String
    public var subject: String { "" }
    public var kindName: String { "invalidConfiguration" }
    public init(_ message: String) { self.message = message }
}
