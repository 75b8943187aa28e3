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

extension FlowFile {
    /// The flow as it runs, as a flow file: every step with every parameter (defaults filled in,
    /// `--set` overrides applied), its name, inputs, workers and error policy. Parsing it gives the
    /// same flow; a run folder keeps it as `flow.resolved.yaml`.
    public var resolvedText: String {
        func entry(_ step: FlowStep, kindKey: String, named: Bool) -> Node {
            var pairs: [(Node, Node)] = [(Node(kindKey), Node(step.kind.name, Tag(.str)))]
            if named { pairs.append((Node("name"), Node(step.name, Tag(.str)))) }
            if !step.from.isEmpty { pairs.append((Node("from"), Node(step.from.map { Node($0, Tag(.str)) }))) }
            if named {
                pairs.append((Node("workers"), Node(String(step.workers), Tag(.int))))
                pairs.append((Node("on_error"), Node(step.onError.rawValue, Tag(.str))))
            }
            for key in step.parameters.values.keys.sorted() { pairs.append((Node(key), step.parameters.values[key]!.node)) }
            return Node(pairs)
        }
        let top = Node([
            (Node("flow"), Node(name, Tag(.str))),
            (Node("on_error"), Node(onError.rawValue, Tag(.str))),
            (Node("output"), Node(output, Tag(.str))),
            (Node("seed"), Node(String(seed), Tag(.int))),
            (Node("sources"), Node(sources.map { (Node($0.name, Tag(.str)), entry($0, kindKey: "kind", named: false)) })),
            (Node("stages"), Node(stages.map { entry($0, kindKey: "stage", named: true) })),
        ])
        return (try? Yams.serialize(node: top)) ?? "# the flow could not be written as YAML\n"
    }
}
