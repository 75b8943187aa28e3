/// Decodes a step's typed parameters from its validated values: a property `minTissue` reads the
/// flow file's `min_tissue` (camelCase ↔ snake_case), an optional property is absent when the flow
/// file leaves an optional parameter out, a `named` parameter decodes as a keyed value whose `name`
/// is the chosen name and whose other keys are the fields set beside it.
///
/// User input was checked against the specs before, so every failure here is a mismatch between a
/// kind's `Parameters` type and its specs (a property the specs do not declare, or of another
/// type). It throws, naming the kind and the parameter: it never traps.
public enum ParameterDecoder {
    public static func decode<T: Decodable>(_ type: T.Type, from values: ParameterValues, specs: [ParameterSpec], kind: String) throws -> T {
        do {
            return try T(from: ValuesDecoder(value: .mapping(values.values, specs), codingPath: []))
        } catch let error as DecodingError {
            throw ParameterMismatch(kind: kind, detail: error.summary)
        }
    }

    /// `minRegionUm2` → `min_region_um2`.
    static func snakeCase(_ name: String) -> String {
        var out = ""
        for character in name {
            if character.isUppercase {
                out += "_" + character.lowercased()
            } else {
                out.append(character)
            }
        }
        return out
    }

    /// `min_region_um2` → `minRegionUm2`.
    static func camelCase(_ name: String) -> String {
        let parts = name.split(separator: "_")
        guard let first = parts.first else { return name }
        return String(first) + parts.dropFirst().map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
    }
}

/// A kind's `Parameters` type disagrees with its parameter specs: a programming error, reported
/// rather than trapped.
public struct ParameterMismatch: Error, CustomStringConvertible {
    public let kind: String
    public let detail: String
    public var description: String {
        "the `\(kind)` stage's parameters do not match its documented ones (\(detail)); this is a bug in SSMamba: please report it"
    }
}

extension DecodingError {
    var summary: String {
        func path(_ context: Context) -> String {
            context.codingPath.map { ParameterDecoder.snakeCase($0.stringValue) }.joined(separator: ".")
        }
        switch self {
        case .keyNotFound(let key, let context):
            let parent = path(context)
            return "'\(parent.isEmpty ? "" : parent + ".")\(ParameterDecoder.snakeCase(key.stringValue))' has no value"
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            return "'\(path(context))': \(context.debugDescription)"
        @unknown default:
            return "\(self)"
        }
    }
}

/// What a decoder reads: one value, or a mapping of named values with the specs that declare them.
private enum Decodee {
    case mapping([String: ParameterValue], [ParameterSpec])
    case value(ParameterValue, ParameterType?)
}

private struct ValuesDecoder: Decoder {
    let value: Decodee
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        switch value {
        case .mapping(let values, let specs):
            return KeyedDecodingContainer(MappingContainer<Key>(values: values, specs: specs, codingPath: codingPath))
        case .value(let single, let type):
            // A `named` parameter: its name and the fields set beside it.
            guard case .named(_, let fields)? = type else { break }
            let nameSpec = ParameterSpec("name", .text, "the chosen name")
            switch single {
            case .text(let name):
                return KeyedDecodingContainer(MappingContainer<Key>(values: ["name": .text(name)], specs: [nameSpec] + fields, codingPath: codingPath))
            case .named(let name, let set):
                var values = set.values
                values["name"] = .text(name)
                return KeyedDecodingContainer(MappingContainer<Key>(values: values, specs: [nameSpec] + fields, codingPath: codingPath))
            default: break
            }
        }
        throw DecodingError.typeMismatch([String: Any].self, .init(codingPath: codingPath, debugDescription: "not a mapping"))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .value(let single, let type) = value else {
            throw DecodingError.typeMismatch([Any].self, .init(codingPath: codingPath, debugDescription: "a mapping, not a list"))
        }
        var elementType: ParameterType?
        if case .list(let element)? = type { elementType = element }
        switch single {
        case .list(let items): return ListContainer(items: items, elementType: elementType, codingPath: codingPath)
        case .numbers(let numbers): return ListContainer(items: numbers.map { .number($0) }, elementType: nil, codingPath: codingPath)
        case .number(let number): return ListContainer(items: [.number(number)], elementType: nil, codingPath: codingPath)
        default:
            throw DecodingError.typeMismatch([Any].self, .init(codingPath: codingPath, debugDescription: "\(single) is not a list"))
        }
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        guard case .value(let single, _) = value else {
            throw DecodingError.typeMismatch(Any.self, .init(codingPath: codingPath, debugDescription: "a mapping, not one value"))
        }
        return SingleValue(value: single, codingPath: codingPath)
    }
}

/// Converts one parameter value to the Swift type asked for.
private func convert<T>(_ value: ParameterValue, to type: T.Type, codingPath: [any CodingKey]) throws -> T {
    let converted: Any?
    switch (value, type) {
    case (.integer(let v), is Int.Type): converted = v
    case (.integer(let v), is Double.Type): converted = Double(v)
    case (.integer(let v), is Float.Type): converted = Float(v)
    case (.number(let v), is Double.Type): converted = v
    case (.number(let v), is Float.Type): converted = Float(v)
    case (.text(let v), is String.Type): converted = v
    case (.named(let v, _), is String.Type): converted = v
    case (.flag(let v), is Bool.Type): converted = v
    default: converted = nil
    }
    guard let result = converted as? T else {
        throw DecodingError.typeMismatch(T.self, .init(codingPath: codingPath, debugDescription: "\(value) is not a \(T.self)"))
    }
    return result
}

private struct SingleValue: SingleValueDecodingContainer {
    let value: ParameterValue
    let codingPath: [any CodingKey]
    func decodeNil() -> Bool { false }
    func decode(_ type: Bool.Type) throws -> Bool { try convert(value, to: type, codingPath: codingPath) }
    func decode(_ type: String.Type) throws -> String { try convert(value, to: type, codingPath: codingPath) }
    func decode(_ type: Double.Type) throws -> Double { try convert(value, to: type, codingPath: codingPath) }
    func decode(_ type: Float.Type) throws -> Float { try convert(value, to: type, codingPath: codingPath) }
    func decode(_ type: Int.Type) throws -> Int { try convert(value, to: type, codingPath: codingPath) }
    func decode(_ type: Int8.Type) throws -> Int8 { try convert(value, to: type, codingPath: codingPath) }
    func decode(_ type: Int16.Type) throws -> Int16 { try convert(value, to: type, codingPath: codingPath) }
    func decode(_ type: Int32.Type) throws -> Int32 { try convert(value, to: type, codingPath: codingPath) }
    func decode(_ type: Int64.Type) throws -> Int64 { try convert(value, to: type, codingPath: codingPath) }
    func decode(_ type: UInt.Type) throws -> UInt { try convert(value, to: type, codingPath: codingPath) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try convert(value, to: type, codingPath: codingPath) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try convert(value, to: type, codingPath: codingPath) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try convert(value, to: type, codingPath: codingPath) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try convert(value, to: type, codingPath: codingPath) }
    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try T(from: ValuesDecoder(value: .value(value, nil), codingPath: codingPath))
    }
}

private struct MappingContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let values: [String: ParameterValue]
    let specs: [ParameterSpec]
    let codingPath: [any CodingKey]

    var allKeys: [Key] { values.keys.compactMap { Key(stringValue: ParameterDecoder.camelCase($0)) ?? Key(stringValue: $0) } }

    /// The spec of `key`; asking for a key no spec declares is the mismatch this decoder exists to catch.
    private func spec(_ key: Key) throws -> ParameterSpec {
        let name = ParameterDecoder.snakeCase(key.stringValue)
        guard let spec = specs.first(where: { $0.name == name }) else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "not a documented parameter"))
        }
        return spec
    }

    func contains(_ key: Key) -> Bool { values[ParameterDecoder.snakeCase(key.stringValue)] != nil }

    func decodeNil(forKey key: Key) throws -> Bool {
        _ = try spec(key)
        return !contains(key)
    }

    private func value(_ key: Key) throws -> (ParameterValue, ParameterSpec) {
        let spec = try spec(key)
        guard let value = values[spec.name] else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "absent, and not optional in the Swift type"))
        }
        return (value, spec)
    }

    // Scalars.
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try convert(try value(key).0, to: type, codingPath: codingPath + [key]) }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try convert(try value(key).0, to: type, codingPath: codingPath + [key]) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try convert(try value(key).0, to: type, codingPath: codingPath + [key]) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try convert(try value(key).0, to: type, codingPath: codingPath + [key]) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try convert(try value(key).0, to: type, codingPath: codingPath + [key]) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try convert(try value(key).0, to: type, codingPath: codingPath + [key]) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try convert(try value(key).0, to: type, codingPath: codingPath + [key]) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try convert(try value(key).0, to: type, codingPath: codingPath + [key]) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try convert(try value(key).0, to: type, codingPath: codingPath + [key]) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try convert(try value(key).0, to: type, codingPath: codingPath + [key]) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try convert(try value(key).0, to: type, codingPath: codingPath + [key]) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try convert(try value(key).0, to: type, codingPath: codingPath + [key]) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try convert(try value(key).0, to: type, codingPath: codingPath + [key]) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try convert(try value(key).0, to: type, codingPath: codingPath + [key]) }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        let (value, spec) = try value(key)
        let path = codingPath + [key]
        switch type {
        case is Bool.Type, is String.Type, is Double.Type, is Float.Type, is Int.Type:
            return try convert(value, to: type, codingPath: path)
        default:
            return try T(from: ValuesDecoder(value: .value(value, spec.type), codingPath: path))
        }
    }

    /// Whether an optional parameter is given; its spec must exist all the same (the library's
    /// default `decodeIfPresent` would answer nil for a misspelt property).
    private func present(_ key: Key) throws -> Bool {
        _ = try spec(key)
        return contains(key)
    }

    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        try present(key) ? try decode(type, forKey: key) : nil
    }
    func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? { try present(key) ? try decode(type, forKey: key) : nil }
    func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? { try present(key) ? try decode(type, forKey: key) : nil }
    func decodeIfPresent(_ type: Double.Type, forKey key: Key) throws -> Double? { try present(key) ? try decode(type, forKey: key) : nil }
    func decodeIfPresent(_ type: Float.Type, forKey key: Key) throws -> Float? { try present(key) ? try decode(type, forKey: key) : nil }
    func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? { try present(key) ? try decode(type, forKey: key) : nil }
    func decodeIfPresent(_ type: Int8.Type, forKey key: Key) throws -> Int8? { try present(key) ? try decode(type, forKey: key) : nil }
    func decodeIfPresent(_ type: Int16.Type, forKey key: Key) throws -> Int16? { try present(key) ? try decode(type, forKey: key) : nil }
    func decodeIfPresent(_ type: Int32.Type, forKey key: Key) throws -> Int32? { try present(key) ? try decode(type, forKey: key) : nil }
    func decodeIfPresent(_ type: Int64.Type, forKey key: Key) throws -> Int64? { try present(key) ? try decode(type, forKey: key) : nil }
    func decodeIfPresent(_ type: UInt.Type, forKey key: Key) throws -> UInt? { try present(key) ? try decode(type, forKey: key) : nil }
    func decodeIfPresent(_ type: UInt8.Type, forKey key: Key) throws -> UInt8? { try present(key) ? try decode(type, forKey: key) : nil }
    func decodeIfPresent(_ type: UInt16.Type, forKey key: Key) throws -> UInt16? { try present(key) ? try decode(type, forKey: key) : nil }
    func decodeIfPresent(_ type: UInt32.Type, forKey key: Key) throws -> UInt32? { try present(key) ? try decode(type, forKey: key) : nil }
    func decodeIfPresent(_ type: UInt64.Type, forKey key: Key) throws -> UInt64? { try present(key) ? try decode(type, forKey: key) : nil }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        let (value, spec) = try value(key)
        return try ValuesDecoder(value: .value(value, spec.type), codingPath: codingPath + [key]).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        let (value, spec) = try value(key)
        return try ValuesDecoder(value: .value(value, spec.type), codingPath: codingPath + [key]).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder { ValuesDecoder(value: .mapping(values, specs), codingPath: codingPath) }
    func superDecoder(forKey key: Key) throws -> any Decoder {
        let (value, spec) = try value(key)
        return ValuesDecoder(value: .value(value, spec.type), codingPath: codingPath + [key])
    }
}

private struct ListContainer: UnkeyedDecodingContainer {
    let items: [ParameterValue]
    let elementType: ParameterType?
    let codingPath: [any CodingKey]
    var currentIndex = 0

    init(items: [ParameterValue], elementType: ParameterType?, codingPath: [any CodingKey]) {
        self.items = items
        self.elementType = elementType
        self.codingPath = codingPath
    }

    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    mutating func next() throws -> ParameterValue {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(Any.self, .init(codingPath: codingPath, debugDescription: "the list has only \(items.count) items"))
        }
        defer { currentIndex += 1 }
        return items[currentIndex]
    }

    mutating func decodeNil() throws -> Bool { false }

    mutating func decode(_ type: Bool.Type) throws -> Bool { try convert(try next(), to: type, codingPath: codingPath) }
    mutating func decode(_ type: String.Type) throws -> String { try convert(try next(), to: type, codingPath: codingPath) }
    mutating func decode(_ type: Double.Type) throws -> Double { try convert(try next(), to: type, codingPath: codingPath) }
    mutating func decode(_ type: Float.Type) throws -> Float { try convert(try next(), to: type, codingPath: codingPath) }
    mutating func decode(_ type: Int.Type) throws -> Int { try convert(try next(), to: type, codingPath: codingPath) }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { try convert(try next(), to: type, codingPath: codingPath) }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try convert(try next(), to: type, codingPath: codingPath) }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try convert(try next(), to: type, codingPath: codingPath) }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try convert(try next(), to: type, codingPath: codingPath) }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try convert(try next(), to: type, codingPath: codingPath) }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try convert(try next(), to: type, codingPath: codingPath) }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try convert(try next(), to: type, codingPath: codingPath) }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try convert(try next(), to: type, codingPath: codingPath) }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try convert(try next(), to: type, codingPath: codingPath) }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let item = try next()
        switch type {
        case is Bool.Type, is String.Type, is Double.Type, is Float.Type, is Int.Type:
            return try convert(item, to: type, codingPath: codingPath)
        default:
            return try T(from: ValuesDecoder(value: .value(item, elementType), codingPath: codingPath))
        }
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try ValuesDecoder(value: .value(try next(), elementType), codingPath: codingPath).container(keyedBy: type)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try ValuesDecoder(value: .value(try next(), elementType), codingPath: codingPath).unkeyedContainer()
    }

    mutating func superDecoder() throws -> any Decoder { ValuesDecoder(value: .value(try next(), elementType), codingPath: codingPath) }
}
