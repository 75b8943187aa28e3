/// The type of a stage parameter, as written in a flow file.
public indirect enum ParameterType: Sendable, Equatable {
    case integer(ClosedRange<Int>)
    case number(ClosedRange<Double>)
    case text
    case flag
    /// A file or folder; `mustExist` files are checked before anything runs.
    case path(mustExist: Bool)
    /// A list of numbers, e.g. several µm/px.
    case numbers(ClosedRange<Double>)
    case choice([String])
    /// One of `choices` by name, or a mapping `{name: one of choices, field: value, …}` whose
    /// other keys are the `fields` (e.g. a named model with some of its settings overridden).
    case named([String], fields: [ParameterSpec])
    /// A non-empty list of values of one type, e.g. `[h, h_flip, v]`.
    case list(ParameterType)

    public var summary: String {
        switch self {
        case .integer(let r): return "integer in \(r.lowerBound)…\(r.upperBound)"
        case .number(let r): return "number in \(r.lowerBound)…\(r.upperBound)"
        case .text: return "text"
        case .flag: return "true or false"
        case .path(let mustExist): return mustExist ? "path to an existing file or folder" : "path"
        case .numbers(let r): return "list of numbers in \(r.lowerBound)…\(r.upperBound)"
        case .choice(let options): return "one of " + options.joined(separator: ", ")
        case .named(let options, let fields):
            return "one of " + options.joined(separator: ", ") + ", or {name: …, " + fields.map(\.name).joined(separator: ", ") + "}"
        case .list(let element): return "a list, each " + element.summary
        }
    }

    /// The summary as the end of "… must be ___" (with its article where English wants one).
    public var requirement: String {
        switch self {
        case .integer: return "an " + summary
        case .number, .path, .numbers: return "a " + summary
        case .text, .flag, .choice, .named, .list: return summary
        }
    }
}

/// One documented parameter of a stage or source kind.
public struct ParameterSpec: Sendable, Equatable {
    public let name: String
    public let type: ParameterType
    /// The default as it would be written in YAML; `nil` means the parameter is required
    /// (or, with `optional`, simply absent).
    public let defaultValue: String?
    public let optional: Bool
    public let doc: String
    /// Whether the value changes the pixels of the tiles a step emits, so that a cache after it keys
    /// its records by it. Where files are, which of them are read, labels and bookkeeping do not.
    public let shapesPixels: Bool

    public init(_ name: String, _ type: ParameterType, default defaultValue: String? = nil, optional: Bool = false,
                shapesPixels: Bool = true, _ doc: String) {
        self.name = name
        self.type = type
        self.defaultValue = defaultValue
        self.optional = optional
        self.shapesPixels = shapesPixels
        self.doc = doc
    }

    public var isRequired: Bool { defaultValue == nil && !optional }
}

/// A kind of source or stage a flow file can name, with its documented parameters.
public struct StepKind: Sendable {
    public let name: String
    /// What it reads and what it emits (e.g. "slide", "tile"); a source reads nothing.
    public let input: String?
    public let output: String?
    public let doc: String
    public let parameters: [ParameterSpec]
    /// When set, the only kinds of step this one may read (e.g. training reads only `cache` steps,
    /// whose items say where their data is stored); the flow check names the line otherwise.
    public let readsOnly: [String]?

    public init(name: String, input: String?, output: String?, doc: String, parameters: [ParameterSpec], readsOnly: [String]? = nil) {
        self.name = name
        self.input = input
        self.output = output
        self.doc = doc
        self.parameters = parameters
        self.readsOnly = readsOnly
    }
}
