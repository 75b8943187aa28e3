/// A parameter value after validation: typed, with defaults filled in.
public enum ParameterValue: Sendable, Equatable {
    case integer(Int)
    case number(Double)
    case text(String)
    case flag(Bool)
    case numbers([Double])
}

/// The validated parameters of one step. Accessors trap only on a programming error (asking for
/// a parameter the kind does not declare, or with the wrong type): user input was checked before.
public struct ParameterValues: Sendable {
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
    public func numbers(_ name: String) -> [Double] {
        switch values[name] {
        case .numbers(let v)?: return v
        case .number(let v)?: return [v]
        default: preconditionFailure("no number-list parameter '\(name)'")
        }
    }
}
