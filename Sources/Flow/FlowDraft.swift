import Yams

/// A flow described in code rather than in a file (a command that assembles a standard flow):
/// steps by kind with typed values, checked exactly as a flow file is (the same checks, defaults
/// and messages), without writing YAML text.
public struct FlowDraft: Sendable {
    /// One source or stage: its kind, optional name, the steps it reads (default: the previous
    /// one), threads, and the parameters it sets (the others take their defaults).
    public struct Step: Sendable {
        public var kind: String
        public var name: String?
        public var from: [String]
        public var workers: Int?
        public var parameters: [String: ParameterValue]

        public init(_ kind: String, name: String? = nil, from: [String] = [], workers: Int? = nil, _ parameters: [String: ParameterValue] = [:]) {
            (self.kind, self.name, self.from, self.workers, self.parameters) = (kind, name, from, workers, parameters)
        }
    }

    public var name: String
    public var output: String?
    public var seed: Int
    public var source: Step
    public var stages: [Step]

    public init(name: String, output: String? = nil, seed: Int = 0, source: Step, stages: [Step]) {
        (self.name, self.output, self.seed, self.source, self.stages) = (name, output, seed, source, stages)
    }

    /// The flow, checked against `catalog`; problems name `path` as their file.
    public func validated(path: String, catalog: FlowCatalog) throws -> FlowFile {
        var parser = FlowFileParser(path: path, catalog: catalog)
        if let flow = parser.flow(document), parser.issues.isEmpty { return flow }
        throw FlowFileError(issues: parser.issues)
    }

    /// The tree a flow file with these contents parses to.
    private var document: Node {
        func entry(_ step: Step, kindKey: String) -> Node {
            var pairs: [(Node, Node)] = [(Node(kindKey), Node(step.kind))]
            if let name = step.name { pairs.append((Node("name"), Node(name, Tag(.str)))) }
            if !step.from.isEmpty { pairs.append((Node("from"), Node(step.from.map { Node($0, Tag(.str)) }))) }
            if let workers = step.workers { pairs.append((Node("workers"), Node(String(workers)))) }
            for key in step.parameters.keys.sorted() { pairs.append((Node(key), step.parameters[key]!.node)) }
            return Node(pairs)
        }
        var top: [(Node, Node)] = [(Node("flow"), Node(name, Tag(.str))), (Node("seed"), Node(String(seed)))]
        if let output { top.append((Node("output"), Node(output, Tag(.str)))) }
        top.append((Node("source"), entry(source, kindKey: "kind")))
        top.append((Node("stages"), Node(stages.map { entry($0, kindKey: "stage") })))
        return Node(top)
    }
}

extension ParameterValue {
    /// The value as a YAML node of the type its spec reads.
    var node: Node {
        switch self {
        case .integer(let v): return Node(String(v), Tag(.int))
        case .number(let v): return Node(String(v), Tag(.float))
        case .text(let v): return Node(v, Tag(.str))
        case .flag(let v): return Node(v ? "true" : "false", Tag(.bool))
        case .numbers(let values): return Node(values.map { Node(String($0), Tag(.float)) })
        case .named(let name, let fields):
            return Node([(Node("name"), Node(name, Tag(.str)))] + fields.values.keys.sorted().map { (Node($0), fields.values[$0]!.node) })
        case .list(let items): return Node(items.map(\.node))
        }
    }
}
