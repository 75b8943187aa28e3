/// A parameter value after validation: typed, with defaults filled in.
public enum ParameterValue: Sendable, Equatable {
    case integer(Int)
    case number(Double)
    case text(String)
    case flag(Bool)
    case numbers([Double])
    /// A `named` parameter: the name and the fields given beside it.
    case named(String, ParameterValues)
    case list([ParameterValue])
}

/// The validated parameters of one step, by the names flow files use. Stages read them as typed
/// values through `ParameterDecoder`.
public struct ParameterValues: Sendable, Equatable {
    public let values: [String: ParameterValue]

    public init(_ values: [String: ParameterValue]) { self.values = values }

    public func has(_ name: String) -> Bool { values[name] != nil }
}

extension ParameterValue {
    /// The value as text that is the same in every process for equal values: for fingerprints.
    /// A `named` value's fields are in key order (a dictionary's own order differs from process to
    /// process, which made a resumed run with `model: {…}` refuse its own checkpoint at random);
    /// every other value keeps the text fingerprints have always used, so existing caches still hit.
    public var canonicalText: String {
        switch self {
        case .named(let name, let fields):
            return "named(\(name), {" + fields.values.keys.sorted().map { "\($0): \(fields.values[$0]!.canonicalText)" }.joined(separator: ", ") + "})"
        case .list(let items) where items.contains(where: { if case .named = $0 { return true } else { return false } }):
            return "[" + items.map(\.canonicalText).joined(separator: ", ") + "]"
        default:
            return "\(self)"
        }
    }
}
