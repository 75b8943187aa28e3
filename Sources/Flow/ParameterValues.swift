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

/// The validated parameters of one step. Accessors trap only on a programming error (asking for
/// a parameter the kind does not declare, or with the wrong type): user input was checked before.
public struct ParameterValues: Sendable, Equatable {
    public let values: [String: ParameterValue]

    public init(_ values: [String: ParameterValue]) { self.values = values }

    public func has(_ name: String) -> Bool { values[name] != nil }

    public func integer(_ name: String) -> Int {
        guard case .integer(let v)? = values[name] else { preconditionFailure("no integer parameter '\(name)'") }
        return v
    }
    public func number(_ name: String) -> Double {
        switch values[name] {
        case .number(let v)?: return v
        case .integer(let v)?: return Double(v)
        default: preconditionFailure("no number parameter '\(name)'")
        }
    }
    public func optionalNumber(_ name: String) -> Double? { has(name) ? number(name) : nil }
    public func text(_ name: String) -> String {
        guard case .text(let v)? = values[name] else { preconditionFailure("no text parameter '\(name)'") }
        return v
    }
    public func optionalText(_ name: String) -> String? { has(name) ? text(name) : nil }
    public func flag(_ name: String) -> Bool {
        guard case .flag(let v)? = values[name] else { preconditionFailure("no flag parameter '\(name)'") }
        return v
    }
    /// A list of text values.
    public func texts(_ name: String) -> [String] {
        guard case .list(let items)? = values[name] else { preconditionFailure("no list parameter '\(name)'") }
        return items.map { item in
            guard case .text(let v) = item else { preconditionFailure("'\(name)' is not a list of text") }
            return v
        }
    }

    /// A list of integers.
    public func integers(_ name: String) -> [Int] {
        guard case .list(let items)? = values[name] else { preconditionFailure("no list parameter '\(name)'") }
        return items.map { item in
            guard case .integer(let v) = item else { preconditionFailure("'\(name)' is not a list of integers") }
            return v
        }
    }

    /// A `named` parameter: the name, and the fields set beside it (none for a plain name).
    public func named(_ name: String) -> (name: String, fields: ParameterValues) {
        switch values[name] {
        case .named(let chosen, let fields)?: return (chosen, fields)
        case .text(let chosen)?: return (chosen, ParameterValues([:]))
        default: preconditionFailure("no named parameter '\(name)'")
        }
    }

    public func numbers(_ name: String) -> [Double] {
        switch values[name] {
        case .numbers(let v)?: return v
        case .number(let v)?: return [v]
        default: preconditionFailure("no number-list parameter '\(name)'")
        }
    }
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
