import Flow
import SSMamba

/// The `model:` parameter of the training stages: a registered configuration by name
/// (`ssmamba model list`), or `{name: …, field: value, …}`, the named one with some fields set;
/// every field of `ModelConfiguration` a recipe varies can be set this way.
enum ModelParameter {
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

    /// The configuration `model:` describes, checked (errors name the field).
    static func configuration(_ p: ParameterValues, _ parameter: String = "model") throws -> ModelConfiguration {
        let (name, set) = p.named(parameter)
        var c = try ModelConfiguration.named(name)
        if set.has("image_size") { c.imageSize = set.integer("image_size") }
        if set.has("patch") { c.patchSize = set.integer("patch") }
        if set.has("dim") { c.dim = set.integer("dim") }
        if set.has("depth") { c.depth = set.integer("depth") }
        if set.has("state_size") { c.stateSize = set.integer("state_size") }
        if set.has("expand") { c.expand = set.integer("expand") }
        if set.has("directions") { c.directions = set.texts("directions") }
        if set.has("local_kernels") { c.localKernels = set.integers("local_kernels") }
        if set.has("local_padding") { c.localPadding = DepthwiseConv1D.Padding(rawValue: set.text("local_padding"))! }
        if set.has("local_path") { c.localPerDirection = set.text("local_path") == "per_direction" }
        if set.has("merge") { c.merge = DirectionalMultiScale.Merge(rawValue: set.text("merge"))! }
        if set.has("attention_blocks") { c.attentionBlocks = set.integer("attention_blocks") }
        if set.has("heads") { c.heads = set.integer("heads") }
        if set.has("mlp_ratio") { c.mlpRatio = set.integer("mlp_ratio") }
        if set.has("lpr") { c.useLPR = set.flag("lpr") }
        if set.has("drop_path") { c.dropPathRate = Float(set.number("drop_path")) }
        if set.has("head_dropout") { c.headDropout = Float(set.number("head_dropout")) }
        do { try c.validate() } catch { throw StageError("`\(parameter):` \(error)") }
        return c
    }
}
