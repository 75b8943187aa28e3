import Foundation
import Yams

/// The kinds of sources and stages a flow file may name, with their documented parameters.
public struct FlowCatalog: Sendable {
    public let sources: [StepKind]
    public let stages: [StepKind]
    public init(sources: [StepKind], stages: [StepKind]) {
        self.sources = sources
        self.stages = stages
    }
}

/// One validated source or stage of a flow file.
public struct FlowStep: Sendable {
    public let name: String
    public let kind: StepKind
    /// The steps it reads (one, or several for a merge); empty for the source.
    public let from: [String]
    public let workers: Int
    public let onError: ErrorPolicy
    public let parameters: ParameterValues
    public let location: FlowFileLocation
}

/// A flow file, validated against a catalog before anything runs.
///
/// ```yaml
/// flow: warm-cache          # the flow's name (required)
/// on_error: skip            # skip | fail, for every stage unless a stage says otherwise
/// output: runs/warm-cache   # run folder (default runs/<flow>)
/// seed: 0
/// source:
///   kind: slides
///   path: data/samples/*.svs
/// stages:                   # a list: each reads the previous one unless it says `from:`
///   - stage: tissue
///   - stage: tiles
///     mpp: 0.5
///   - stage: cache
///     name: write           # names default to the kind; `from:` names one step or a list (merge)
///     from: tiles
///     workers: 1
///     on_error: fail
/// ```
/// Relative paths are taken from the current directory.
public struct FlowFile: Sendable {
    public let path: String
    public let name: String
    public let onError: ErrorPolicy
    public let output: String
    public let seed: Int
    /// The first source (most flows have one).
    public var source: FlowStep { sources[0] }
    /// Every source: `source:` gives one named "source"; `sources:` names several.
    public let sources: [FlowStep]
    public let stages: [FlowStep]

    /// The same flow restricted to `step` and every step it reads from, directly or not (the
    /// part a cache warm-up runs).
    public func restricted(toAncestorsOf step: String) -> FlowFile {
        let all = sources + stages
        var keep: Set<String> = [step]
        var frontier = [step]
        while let name = frontier.popLast() {
            for parent in all.first(where: { $0.name == name })?.from ?? [] where keep.insert(parent).inserted { frontier.append(parent) }
        }
        return FlowFile(path: path, name: self.name, onError: onError, output: output, seed: seed,
                        sources: sources.filter { keep.contains($0.name) }, stages: stages.filter { keep.contains($0.name) })
    }

    /// The keys every stage entry may carry besides its kind's parameters.
    public static let commonStageKeys: [ParameterSpec] = [
        ParameterSpec("name", .text, optional: true, "the step's name (default: its kind); other steps refer to it in `from:`"),
        ParameterSpec("from", .text, optional: true, "the step(s) it reads (default: the previous one); a list merges several"),
        ParameterSpec("workers", .integer(1...64), default: "1", "threads running the stage"),
        ParameterSpec("on_error", .choice(ErrorPolicy.allCases.map(\.rawValue)), optional: true,
                      "skip (report the item, go on) or fail (stop the run); default: the flow's on_error"),
    ]
    static let topKeys = ["flow", "on_error", "output", "seed", "source", "sources", "stages"]

    /// Reads and validates `path`; `overrides` are `step.parameter=value` (or `key=value` for a
    /// top-level key) as given with `--set`.
    public static func load(_ path: String, catalog: FlowCatalog, overrides: [String] = []) throws -> FlowFile {
        let place = FlowFileLocation(file: path, line: 0, column: 0)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw FlowFileError(issues: [FlowFileIssue(location: place, message: "cannot read the flow file (check the path and its permissions)")])
        }
        guard let text = String(data: data, encoding: .utf8) else {
            let utf16 = data.starts(with: [0xFF, 0xFE]) || data.starts(with: [0xFE, 0xFF])
            throw FlowFileError(issues: [FlowFileIssue(location: place, message: "the flow file is not UTF-8 text"
                + (utf16 ? " (it is UTF-16)" : "") + "; save it as UTF-8")])
        }
        return try parse(text, path: path, catalog: catalog, overrides: overrides)
    }

    public static func parse(_ text: String, path: String, catalog: FlowCatalog, overrides: [String] = []) throws -> FlowFile {
        var parser = FlowFileParser(path: path, catalog: catalog)
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw FlowFileError(issues: [parser.issue(nil, "the flow file is empty")])
            }
            root = node
        } catch let error as FlowFileError {
            throw error
        } catch let error as YamlError {
            throw FlowFileError(issues: [parser.yamlIssue(error)])
        }
        let applied = parser.apply(overrides: overrides, to: root)
        let flow = parser.flow(applied)
        if let flow, parser.issues.isEmpty { return flow }
        throw FlowFileError(issues: parser.issues)
    }
}

/// Walks the YAML tree, collecting every mistake rather than stopping at the first.
struct FlowFileParser {
    let path: String
    let catalog: FlowCatalog
    var issues: [FlowFileIssue] = []

    init(path: String, catalog: FlowCatalog) {
        self.path = path
        self.catalog = catalog
    }

    /// `--set` values as given and as composed: a problem inside one is reported at the `--set`
    /// argument with the value, not at the flow file's first line (where its marks point).
    var overrideValues: [(argument: String, node: Node)] = []
    /// `--set` keys (the part after the step's name); they enter the tree without a mark.
    var overrideKeys: [(argument: String, key: String)] = []

    func issue(_ node: Node?, _ message: String) -> FlowFileIssue {
        let mark = node?.mark
        if let node, let mark, mark.line == 1, let given = overrideValues.first(where: { Self.holds($0.node, node, at: mark) }) {
            let value = node.string.map { " (got '\($0)')" } ?? ""
            return FlowFileIssue(location: FlowFileLocation(file: "--set \(given.argument)", line: 0, column: 0), message: message + value)
        }
        if let node, mark == nil, let given = overrideKeys.first(where: { $0.key == node.string }) {
            return FlowFileIssue(location: FlowFileLocation(file: "--set \(given.argument)", line: 0, column: 0), message: message)
        }
        return FlowFileIssue(location: FlowFileLocation(file: path, line: mark?.line ?? 0, column: mark?.column ?? 0), message: message)
    }

    /// Whether `tree` is, or holds, `node` at `mark`.
    private static func holds(_ tree: Node, _ node: Node, at mark: Mark) -> Bool {
        if tree == node, tree.mark?.line == mark.line, tree.mark?.column == mark.column { return true }
        switch tree {
        case .mapping(let map): return map.contains { holds($0.key, node, at: mark) || holds($0.value, node, at: mark) }
        case .sequence(let list): return list.contains { holds($0, node, at: mark) }
        default: return false
        }
    }

    mutating func report(_ node: Node?, _ message: String) { issues.append(issue(node, message)) }

    func yamlIssue(_ error: YamlError) -> FlowFileIssue {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _):
            let what = [context?.text, problem].compactMap { $0 }.joined(separator: ": ")
            return FlowFileIssue(location: FlowFileLocation(file: path, line: mark.line, column: mark.column),
                                 message: "not valid YAML: \(what)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            // The key and its mapping's place only (the context text is the whole mapping: the whole file for top-level keys).
            return FlowFileIssue(location: FlowFileLocation(file: path, line: context.mark.line, column: context.mark.column),
                                 message: "the key \(duplicates.sorted().map { "'\($0)'" }.joined(separator: ", ")) appears twice in this mapping; keep one")
        default:
            return FlowFileIssue(location: FlowFileLocation(file: path, line: 0, column: 0), message: "not valid YAML: \(error)")
        }
    }

    // MARK: overrides

    /// Applies `--set` overrides to the tree, before validation, so overridden values are checked
    /// like written ones.
    mutating func apply(overrides: [String], to root: Node) -> Node {
        var root = root
        for override in overrides {
            let place = FlowFileLocation(file: "--set \(override)", line: 0, column: 0)
            guard let equals = override.firstIndex(of: "=") else {
                issues.append(FlowFileIssue(location: place, message: "write --set step.parameter=value"))
                continue
            }
            let key = String(override[..<equals]), valueText = String(override[override.index(after: equals)...])
            let value = (try? Yams.compose(yaml: valueText)) ?? nil ?? Node(valueText)
            overrideValues.append((override, value))
            let parts = key.split(separator: ".", maxSplits: 1).map(String.init)
            overrideKeys.append((override, parts[parts.count - 1]))
            guard case .mapping(var top) = root else { return root }
            if parts.count == 1 {
                top[Node(parts[0])] = value
            } else if parts[0] == "source", case .mapping(var source)? = top[Node("source")] {
                source[Node(parts[1])] = value
                top[Node("source")] = .mapping(source)
            } else if case .mapping(var sources)? = top[Node("sources")], case .mapping(var source)? = sources[Node(parts[0])] {
                source[Node(parts[1])] = value
                sources[Node(parts[0])] = .mapping(source)
                top[Node("sources")] = .mapping(sources)
            } else if case .sequence(var stages)? = top[Node("stages")],
                      let index = stages.firstIndex(where: { stepName($0) == parts[0] }),
                      case .mapping(var stage) = stages[index] {
                stage[Node(parts[1])] = value
                stages[index] = .mapping(stage)
                top[Node("stages")] = .sequence(stages)
            } else {
                issues.append(FlowFileIssue(location: place, message: "no step named '\(parts[0])' in the flow"))
                continue
            }
            root = .mapping(top)
        }
        return root
    }

    private func stepName(_ node: Node) -> String? {
        node["name"]?.string ?? node["stage"]?.string
    }

    // MARK: the flow

    mutating func flow(_ root: Node) -> FlowFile? {
        guard case .mapping(let top) = root else {
            report(root, "a flow file is a mapping with keys \(FlowFile.topKeys.joined(separator: ", "))")
            return nil
        }
        checkKeys(top, allowed: FlowFile.topKeys, in: "the flow")
        let name = top["flow"].flatMap { scalarText($0, "flow") }
        if top["flow"] == nil { report(root, "missing 'flow:' (the flow's name)") }
        let onError = top["on_error"].flatMap { choice($0, ErrorPolicy.allCases.map(\.rawValue), "on_error") }.flatMap(ErrorPolicy.init) ?? .skip
        let output = top["output"].flatMap { scalarText($0, "output") } ?? "runs/\(name ?? "flow")"
        var seed = 0
        if let node = top["seed"] {
            if let value = node.int { seed = value } else { report(node, "'seed' must be an integer") }
        }

        var steps: [FlowStep] = []
        if let node = top["source"] {
            if top["sources"] != nil { report(node, "give either 'source:' or 'sources:', not both") }
            if let made = step(node, kindKey: "kind", kinds: catalog.sources, defaultName: "source", flowPolicy: onError, previous: nil, known: [:]) {
                steps.append(made)
            }
        } else if let node = top["sources"] {
            guard case .mapping(let named) = node, !named.isEmpty else {
                report(node, "'sources' maps names to sources, e.g. sources: {slides: {kind: slides, path: …}}")
                return nil
            }
            for (key, value) in named {
                guard let name = key.string else { report(key, "source names must be text"); continue }
                if steps.contains(where: { $0.name == name }) { report(key, "two sources are named '\(name)'") }
                if let made = step(value, kindKey: "kind", kinds: catalog.sources, defaultName: name, flowPolicy: onError, previous: nil, known: [:]) {
                    steps.append(made)
                }
            }
        } else {
            report(root, "missing 'source:' (where the items come from: " + catalog.sources.map(\.name).joined(separator: ", ") + ")")
        }
        let sources = steps
        guard let stagesNode = top["stages"] else {
            report(root, "missing 'stages:' (a list of stages)")
            return nil
        }
        guard case .sequence(let list) = stagesNode, !list.isEmpty else {
            report(stagesNode, "'stages' must be a non-empty list of stages (each entry starts with '- stage: KIND')")
            return nil
        }
        var stages: [FlowStep] = []
        var byName = Dictionary(steps.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        for entry in list {
            if let made = step(entry, kindKey: "stage", kinds: catalog.stages, defaultName: nil, flowPolicy: onError,
                               previous: steps.last, known: byName, order: steps) {
                stages.append(made)
                steps.append(made)
                if byName[made.name] == nil { byName[made.name] = made }
            }
        }
        guard let name, !sources.isEmpty else { return nil }
        return FlowFile(path: path, name: name, onError: onError, output: output, seed: seed, sources: sources, stages: stages)
    }

    /// Validates one source or stage entry against its kind; `known` holds the earlier steps by
    /// name (`order` in file order, for messages).
    private mutating func step(
        _ node: Node, kindKey: String, kinds: [StepKind], defaultName: String?, flowPolicy: ErrorPolicy,
        previous: FlowStep?, known: [String: FlowStep], order: [FlowStep] = []
    ) -> FlowStep? {
        guard case .mapping(let map) = node else {
            report(node, "expected a mapping starting with '\(kindKey): KIND'")
            return nil
        }
        let kindNames = kinds.map(\.name)
        guard let kindNode = map[kindKey] else {
            report(node, "missing '\(kindKey):' (one of \(kindNames.joined(separator: ", ")))")
            return nil
        }
        guard let kindName = kindNode.string, let kind = kinds.first(where: { $0.name == kindName }) else {
            report(kindNode, "unknown \(kindKey == "kind" ? "source" : "stage") kind '\(kindNode.string ?? "?")'"
                   + suggestion(kindNode.string ?? "", kindNames) + " (known: \(kindNames.joined(separator: ", ")))")
            return nil
        }
        let location = FlowFileLocation(file: path, line: node.mark?.line ?? 0, column: node.mark?.column ?? 0)
        let allowed = [kindKey] + (defaultName == nil ? FlowFile.commonStageKeys.map(\.name) : []) + kind.parameters.map(\.name)
        checkKeys(map, allowed: allowed, in: "\(kindKey) '\(kindName)'")

        let name = map["name"].flatMap { scalarText($0, "name") } ?? defaultName ?? kindName
        if known[name] != nil {
            report(node, "a step named '\(name)' already exists: give this one a different 'name:'")
        }
        var workers = 1
        if let w = map["workers"] {
            if let v = w.int, (1...64).contains(v) { workers = v } else { report(w, "'workers' must be an integer in 1…64") }
        }
        let policy = map["on_error"].flatMap { choice($0, ErrorPolicy.allCases.map(\.rawValue), "on_error") }.flatMap(ErrorPolicy.init) ?? flowPolicy

        var from: [String] = []
        if defaultName == nil {
            if let fromNode = map["from"] {
                let names: [(String, Node)]
                switch fromNode {
                case .sequence(let seq): names = seq.compactMap { n in n.string.map { ($0, n) } }
                default: names = fromNode.string.map { [($0, fromNode)] } ?? []
                }
                if names.isEmpty { report(fromNode, "'from' names a step or a list of steps") }
                for (reference, refNode) in names {
                    if let target = known[reference] {
                        checkTypes(kind, reading: target, at: refNode)
                    } else {
                        let names = order.map(\.name)
                        let listed = names.count <= 12 ? names.joined(separator: ", ") : "…, " + names.suffix(12).joined(separator: ", ")
                        report(refNode, "'from: \(reference)' names no earlier step" + suggestion(reference, names.count <= 1_000 ? names : [])
                               + " (steps are read in order; earlier steps: \(listed))")
                    }
                    from.append(reference)
                }
            } else if let previous {
                checkTypes(kind, reading: previous, at: kindNode)
                from = [previous.name]
            }
        }

        var values: [String: ParameterValue] = [:]
        for spec in kind.parameters {
            if let valueNode = map[spec.name] {
                if let value = parameter(valueNode, spec) { values[spec.name] = value }
            } else if let text = spec.defaultValue, let value = defaultValue(text, spec) {
                values[spec.name] = value
            } else if spec.isRequired {
                report(node, "\(kindKey) '\(kindName)' needs '\(spec.name)' (\(spec.type.summary)): \(spec.doc)")
            }
        }
        return FlowStep(name: name, kind: kind, from: from, workers: workers, onError: policy,
                        parameters: ParameterValues(values), location: location)
    }

    private mutating func checkTypes(_ kind: StepKind, reading target: FlowStep, at node: Node) {
        guard let wanted = kind.input else { return }
        guard let given = target.kind.output else {
            report(node, "stage '\(kind.name)' reads \(wanted)s but '\(target.name)' emits nothing")
            return
        }
        if given != wanted {
            report(node, "stage '\(kind.name)' reads \(wanted)s but '\(target.name)' emits \(given)s")
        } else if let allowed = kind.readsOnly, !allowed.contains(target.kind.name) {
            report(node, "stage '\(kind.name)' reads only \(allowed.map { "`\($0)`" }.joined(separator: " or ")) steps, and '\(target.name)' is a `\(target.kind.name)` step: "
                   + "add `- stage: \(allowed[0])` with `from: \(target.name)` (and a `name:` if there are several) and read that instead")
        }
    }

    private mutating func checkKeys(_ map: Node.Mapping, allowed: [String], in place: String) {
        for (key, _) in map {
            guard let text = key.string else { report(key, "keys must be text"); continue }
            if !allowed.contains(text) {
                report(key, "unknown key '\(text)' in \(place)" + suggestion(text, allowed) + " (allowed: \(allowed.joined(separator: ", ")))")
            }
        }
    }

    // MARK: values

    private mutating func scalarText(_ node: Node, _ key: String) -> String? {
        guard case .scalar(let scalar) = node else { report(node, "'\(key)' must be a single value"); return nil }
        return scalar.string
    }

    private mutating func choice(_ node: Node, _ options: [String], _ key: String) -> String? {
        guard let text = node.string, options.contains(text) else {
            report(node, "'\(key)' must be one of \(options.joined(separator: ", "))")
            return nil
        }
        return text
    }

    private mutating func defaultValue(_ text: String, _ spec: ParameterSpec) -> ParameterValue? {
        parameter(DefaultNodes.shared.node(text), spec, checkExistence: false)
    }

    private mutating func parameter(_ node: Node, _ spec: ParameterSpec, checkExistence: Bool = true) -> ParameterValue? {
        let wrong = "'\(spec.name)' must be \(spec.type.requirement)"
        switch spec.type {
        case .integer(let range):
            guard case .scalar = node, let v = node.int, range.contains(v) else { report(node, wrong); return nil }
            return .integer(v)
        case .number(let range):
            guard case .scalar = node, let v = node.float, v.isFinite, range.contains(v) else { report(node, wrong); return nil }
            return .number(v)
        case .text:
            guard case .scalar(let s) = node else { report(node, wrong); return nil }
            return .text(s.string)
        case .flag:
            guard case .scalar = node, let v = node.bool else { report(node, wrong); return nil }
            return .flag(v)
        case .path(let mustExist):
            guard case .scalar(let s) = node, !s.string.isEmpty else { report(node, wrong); return nil }
            if mustExist && checkExistence && PathPattern.matches(s.string).isEmpty {
                report(node, "'\(spec.name)': nothing found at '\(s.string)' (relative paths start at the current directory "
                       + "\(FileManager.default.currentDirectoryPath))")
                return nil
            }
            return .text(s.string)
        case .numbers(let range):
            let items: [Node]
            if case .sequence(let seq) = node { items = Array(seq) } else { items = [node] }
            let values = items.compactMap { $0.float }
            guard !items.isEmpty, values.count == items.count, values.allSatisfy({ $0.isFinite && range.contains($0) }) else {
                report(node, wrong); return nil
            }
            return .numbers(values)
        case .choice(let options):
            guard let text = node.string, options.contains(text) else {
                report(node, wrong + suggestion(node.string ?? "", options)); return nil
            }
            return .text(text)
        case .named(let options, let fields):
            guard case .mapping(let map) = node else {
                return parameter(node, ParameterSpec(spec.name, .choice(options), spec.doc), checkExistence: checkExistence)
            }
            checkKeys(map, allowed: ["name"] + fields.map(\.name), in: "'\(spec.name)'")
            guard let nameNode = map["name"] else { report(node, "'\(spec.name)' needs `name:` (one of \(options.joined(separator: ", ")))"); return nil }
            guard case .text(let chosen)? = parameter(nameNode, ParameterSpec("name", .choice(options), spec.doc)) else { return nil }
            var values: [String: ParameterValue] = [:]
            var complete = true
            for field in fields {
                guard let valueNode = map[field.name] else { continue }
                guard let value = parameter(valueNode, field, checkExistence: checkExistence) else { complete = false; continue }
                values[field.name] = value
            }
            return complete ? .named(chosen, ParameterValues(values)) : nil
        case .list(let element):
            guard case .sequence(let seq) = node, !seq.isEmpty else { report(node, wrong); return nil }
            let items = seq.map { parameter($0, ParameterSpec(spec.name, element, spec.doc), checkExistence: checkExistence) }
            guard items.allSatisfy({ $0 != nil }) else { return nil }
            return .list(items.map { $0! })
        }
    }

    /// " (did you mean 'x'?)" when a known word is one or two edits away.
    private func suggestion(_ word: String, _ known: [String]) -> String {
        let best = known.map { ($0, editDistance(word, $0)) }.min { $0.1 < $1.1 }
        guard let best, best.1 <= 2, best.1 < word.count else { return "" }
        return " (did you mean '\(best.0)'?)"
    }
}

/// Levenshtein distance, for suggestions.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    var row = Array(0...b.count)
    for i in 1...max(1, a.count) where !a.isEmpty {
        var previous = row[0]
        row[0] = i
        for j in stride(from: 1, through: b.count, by: 1) {
            let current = row[j]
            row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
            previous = current
        }
    }
    return a.isEmpty ? b.count : row[b.count]
}

/// Catalog defaults composed as YAML once per process: composing one costs a YAML parser (which
/// reads the process environment), and a flow of 60,000 steps asks for the same few hundred.
private final class DefaultNodes: @unchecked Sendable {
    static let shared = DefaultNodes()
    private let lock = NSLock()
    private var nodes: [String: Node] = [:]

    func node(_ text: String) -> Node {
        if let known = lock.withLock({ nodes[text] }) { return known }
        let node = ((try? Yams.compose(yaml: text)) ?? nil) ?? Node(text)
        lock.withLock { nodes[text] = node }
        return node
    }
}
