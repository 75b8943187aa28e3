import Flow
import SSMamba

/// The `model:` parameter of the training stages: a registered configuration by name
/// (`ssmamba model list`), or `{name: …, field: value, …}`, the named one with some fields set;
/// every field of `ModelConfiguration` a recipe varies can be set this way.
enum ModelParameter {
    /// Every registered configuration's name.
    static let names = ModelConfiguration.registry.keys.sorted()
    /// MAMIM needs the plain layout (R1's masked pretraining is not built).
    static let pretrainableNames = names.filter { ModelConfiguration.registry[$0]!.layout == .plain }

    /// The fields a flow file can set, with the flow's names.
    static let fields: [ParameterSpec] = [
        ParameterSpec("image_size", .integer(8...4096), "input side in pixels (the tiles must have it)"),
        ParameterSpec("patch", .integer(1...256), "patch side in pixels (a divisor of image_size)"),
        ParameterSpec("dim", .integer(8...4096), "token width"),
        ParameterSpec("depth", .integer(1...256), "blocks"),
        ParameterSpec("state_size", .integer(1...256), "state size N of the selective scan"),
        ParameterSpec("expand", .integer(1...8), "inner width of a scan as a multiple of dim"),
        ParameterSpec("directions", .list(.text), "scan orders of each DMS block: h, v or wK (K ≥ 1), each optionally with _flip"),
        ParameterSpec("local_kernels", .list(.integer(1...31)), "odd kernel sizes of the DMS local path (several are summed)"),
        ParameterSpec("local_padding", .choice(["same", "causal"]), "padding of the DMS local path"),
        ParameterSpec("local_path", .choice(["shared", "per_direction"]), "one DMS local path in storage order, or one per scan direction along its visiting order (Vim)"),
        ParameterSpec("merge", .choice(["mean", "sum", "softmax"]), "how the scan directions' outputs combine"),
        ParameterSpec("attention_blocks", .integer(0...256), "how many of the last blocks use self-attention"),
        ParameterSpec("heads", .integer(1...64), "attention heads"),
        ParameterSpec("mlp_ratio", .integer(0...16), "MLP width as a multiple of dim (0: no MLP sub-block)"),
        ParameterSpec("lpr", .flag, "the Local Perception Residual before each block"),
        ParameterSpec("drop_path", .number(0...0.9), "stochastic depth rate of the last block (0 in the first, linear between)"),
        ParameterSpec("head_dropout", .number(0...0.9), "dropout before the classifier head"),
    ]

    static func type(_ names: [String]) -> ParameterType { .named(names, fields: fields) }
}

/// A `model:` value: a registered configuration's name and the fields set beside it.
struct ModelChoice: Decodable {
    var name: String
    var imageSize: Int?
    var patch: Int?
    var dim: Int?
    var depth: Int?
    var stateSize: Int?
    var expand: Int?
    var directions: [String]?
    var localKernels: [Int]?
    var localPadding: DepthwiseConv1D.Padding?
    var localPath: String?
    var merge: DirectionalMultiScale.Merge?
    var attentionBlocks: Int?
    var heads: Int?
    var mlpRatio: Int?
    var lpr: Bool?
    var dropPath: Double?
    var headDropout: Double?

    /// The configuration it describes, checked (errors name the field).
    func configuration(_ parameter: String = "model") throws -> ModelConfiguration {
        var c = try ModelConfiguration.named(name)
        if let imageSize { c.imageSize = imageSize }
        if let patch { c.patchSize = patch }
        if let dim { c.dim = dim }
        if let depth { c.depth = depth }
        if let stateSize { c.stateSize = stateSize }
        if let expand { c.expand = expand }
        if let directions { c.directions = directions }
        if let localKernels { c.localKernels = localKernels }
        if let localPadding { c.localPadding = localPadding }
        if let localPath { c.localPerDirection = localPath == "per_direction" }
        if let merge { c.merge = merge }
        if let attentionBlocks { c.attentionBlocks = attentionBlocks }
        if let heads { c.heads = heads }
        if let mlpRatio { c.mlpRatio = mlpRatio }
        if let lpr { c.useLPR = lpr }
        if let dropPath { c.dropPathRate = Float(dropPath) }
        if let headDropout { c.headDropout = Float(headDropout) }
        do { try c.validate() } catch { throw StageError("`\(parameter):` \(error)") }
        return c
    }
}
