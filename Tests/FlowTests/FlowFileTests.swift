import Foundation
import XCTest
import Flow

/// Flow-file validation against a small catalog: every class of mistake names its line and column.
final class FlowFileTests: XCTestCase {
    let catalog = FlowCatalog(
        sources: [StepKind(name: "numbers", input: nil, output: "number", doc: "counts", parameters: [
            ParameterSpec("count", .integer(1...1_000_000), default: "10", "how many"),
            ParameterSpec("list", .path(mustExist: true), optional: true, "a file"),
        ])],
        stages: [
            StepKind(name: "scale", input: "number", output: "number", doc: "multiplies", parameters: [
                ParameterSpec("factor", .number(-100...100), default: "2", "the factor"),
                ParameterSpec("scales", .numbers(0.1...10), default: "[0.5, 1]", "µm/px list"),
                ParameterSpec("method", .choice(["macenko", "reinhard"]), default: "macenko", "the method"),
            ]),
            StepKind(name: "label", input: "number", output: "text", doc: "formats", parameters: [
                ParameterSpec("model", .named(["small", "large"], fields: [
                    ParameterSpec("width", .integer(1...64), "the width"),
                    ParameterSpec("orders", .list(.text), "scan orders"),
                    ParameterSpec("kernels", .list(.integer(1...9)), "kernel sizes"),
                ]), default: "small", "a named model with fields"),
            ]),
            StepKind(name: "print", input: "text", output: nil, doc: "prints", parameters: [
                ParameterSpec("prefix", .text, "required prefix"),
            ]),
        ])

    // The catalog's parameters as types, the way stage kinds declare them.
    struct Numbers: Decodable { var count: Int; var list: String? }
    struct Scale: Decodable { var factor: Double; var scales: [Double]; var method: String }
    struct Label: Decodable {
        struct Model: Decodable { var name: String; var width: Int?; var orders: [String]?; var kernels: [Int]? }
        var model: Model
    }

    private func decode<T: Decodable>(_ type: T.Type, _ step: FlowStep) throws -> T {
        try ParameterDecoder.decode(type, from: step.parameters, specs: step.kind.parameters, kind: step.kind.name)
    }

    /// A Swift property that no spec declares, or of another type, is an error naming the kind and the
    /// parameter (a bug in a stage kind, caught by the decoder instead of trapping).
    func testParametersTypesThatDisagreeWithTheSpecsAreErrors() throws {
        let flow = try FlowFile.parse(good, path: "test.yaml", catalog: catalog)
        struct Typo: Decodable { var factr: Double }
        XCTAssertThrowsError(try decode(Typo.self, flow.stages[0])) { error in
            XCTAssertTrue("\(error)".contains("the `scale` stage's parameters do not match") && "\(error)".contains("'factr'"), "\(error)")
        }
        struct OptionalTypo: Decodable { var factor: Double; var methd: String? }
        XCTAssertThrowsError(try decode(OptionalTypo.self, flow.stages[0])) { error in
            XCTAssertTrue("\(error)".contains("'methd'"), "an optional property must be declared too: \(error)")
        }
        struct WrongType: Decodable { var method: Int }
        XCTAssertThrowsError(try decode(WrongType.self, flow.stages[0])) { error in
            XCTAssertTrue("\(error)".contains("'method'"), "\(error)")
        }
        struct CamelCase: Decodable { var minRegionUm2: Int }
        let spec = [ParameterSpec("min_region_um2", .integer(0...9), "")]
        XCTAssertEqual(try ParameterDecoder.decode(CamelCase.self, from: ParameterValues(["min_region_um2": .integer(4)]), specs: spec, kind: "k").minRegionUm2, 4)
    }

    private func issues(_ yaml: String, overrides: [String] = []) -> [FlowFileIssue] {
        do {
            _ = try FlowFile.parse(yaml, path: "test.yaml", catalog: catalog, overrides: overrides)
            XCTFail("expected an error for:\n\(yaml)")
            return []
        } catch let error as FlowFileError {
            return error.issues
        } catch {
            XCTFail("unexpected \(error)")
            return []
        }
    }

    private func assertIssue(_ yaml: String, line: Int, column: Int, contains text: String, overrides: [String] = [],
                             file: StaticString = #filePath, lineNumber: UInt = #line) {
        let found = issues(yaml, overrides: overrides)
        XCTAssertTrue(found.contains { $0.location.line == line && $0.location.column == column && $0.message.contains(text) },
                      "wanted \(line):\(column) '\(text)', got:\n" + found.map(\.description).joined(separator: "\n"),
                      file: file, line: lineNumber)
    }

    let good = """
        flow: demo
        on_error: fail
        seed: 3
        source:
          kind: numbers
          count: 5
        stages:
          - stage: scale
            factor: 3
            workers: 2
          - stage: label
          - stage: print
            prefix: "n="
            on_error: skip
        """

    func testAValidFlowParsesWithDefaultsFilledIn() throws {
        let flow = try FlowFile.parse(good, path: "test.yaml", catalog: catalog)
        XCTAssertEqual(flow.name, "demo")
        XCTAssertEqual(flow.output, "runs/demo")
        XCTAssertEqual(flow.seed, 3)
        XCTAssertEqual(try decode(Numbers.self, flow.source).count, 5)
        XCTAssertEqual(flow.stages.map(\.name), ["scale", "label", "print"])
        XCTAssertEqual(flow.stages[0].from, ["source"])
        XCTAssertEqual(flow.stages[0].workers, 2)
        let scale = try decode(Scale.self, flow.stages[0])
        XCTAssertEqual(scale.factor, 3)
        XCTAssertEqual(scale.scales, [0.5, 1])
        XCTAssertEqual(scale.method, "macenko")
        XCTAssertEqual(flow.stages[0].onError, .fail)
        XCTAssertEqual(flow.stages[2].onError, .skip)
        XCTAssertEqual(flow.stages[2].location.line, 12)
    }

    /// Fingerprints read a named value's fields in key order: a resumed run (another process, with
    /// another dictionary order) must find its own checkpoint's fingerprint.
    func testNamedValuesHaveOneCanonicalText() throws {
        let keys = (0..<40).map { "field\($0)" }
        var forward: [String: ParameterValue] = [:], backward: [String: ParameterValue] = [:]
        for (i, key) in keys.enumerated() { forward[key] = .integer(i) }
        for (i, key) in keys.enumerated().reversed() { backward[key] = .integer(i) }
        let a = ParameterValue.named("m", ParameterValues(forward)), b = ParameterValue.named("m", ParameterValues(backward))
        XCTAssertEqual(a.canonicalText, b.canonicalText)
        XCTAssertTrue(a.canonicalText.hasPrefix("named(m, {field0: integer(0), field1: integer(1), field10: integer(10)"), a.canonicalText)
        XCTAssertEqual(ParameterValue.numbers([0.5, 1]).canonicalText, "\(ParameterValue.numbers([0.5, 1]))", "other values keep their text (cache keys stay valid)")
    }

    /// A flow built in code is checked like a file: defaults filled in, values of every type kept
    /// as given (text that looks like a number stays text), mistakes reported with the same words.
    func testDraftsAreCheckedLikeFlowFiles() throws {
        let draft = FlowDraft(name: "drafted", seed: 4, source: FlowDraft.Step("numbers", ["count": .integer(7)]), stages: [
            FlowDraft.Step("scale", workers: 3, ["factor": .number(1e-3), "scales": .numbers([0.25, 2]), "method": .text("reinhard")]),
            FlowDraft.Step("label", ["model": .named("large", ParameterValues(["width": .integer(8), "orders": .list([.text("h"), .text("v_flip")])]))]),
            FlowDraft.Step("print", name: "out", from: ["label"], ["prefix": .text("1e5 \"quoted\" \\ text")]),
        ])
        let flow = try draft.validated(path: "drafted", catalog: catalog)
        XCTAssertEqual(flow.name, "drafted")
        XCTAssertEqual(flow.output, "runs/drafted")
        XCTAssertEqual(flow.seed, 4)
        XCTAssertEqual(try decode(Numbers.self, flow.source).count, 7)
        let scale = try decode(Scale.self, flow.stages[0])
        XCTAssertEqual(scale.factor, 1e-3)
        XCTAssertEqual(scale.scales, [0.25, 2])
        XCTAssertEqual(scale.method, "reinhard")
        XCTAssertEqual(flow.stages[0].workers, 3)
        let model = try decode(Label.self, flow.stages[1]).model
        XCTAssertEqual(model.name, "large")
        XCTAssertEqual(model.width, 8)
        XCTAssertEqual(model.orders, ["h", "v_flip"])
        XCTAssertEqual(flow.stages[2].name, "out")
        XCTAssertEqual(flow.stages[2].from, ["label"])
        XCTAssertEqual(flow.stages[2].parameters.values["prefix"], .text("1e5 \"quoted\" \\ text"))
        let defaults = try FlowDraft(name: "d", source: FlowDraft.Step("numbers"), stages: [FlowDraft.Step("scale")]).validated(path: "d", catalog: catalog)
        XCTAssertEqual(try decode(Scale.self, defaults.stages[0]).factor, 2, "defaults are filled in")

        let bad = FlowDraft(name: "bad", source: FlowDraft.Step("numbers", ["count": .integer(0)]), stages: [
            FlowDraft.Step("scale", ["facter": .number(1), "method": .text("vahadane")]),
        ])
        XCTAssertThrowsError(try bad.validated(path: "ssmamba test", catalog: catalog)) { error in
            let messages = (error as? FlowFileError)?.issues.map(\.message) ?? []
            XCTAssertTrue(messages.contains("'count' must be an integer in 1…1000000"), "\(messages)")
            XCTAssertTrue(messages.contains { $0.hasPrefix("unknown key 'facter'") }, "\(messages)")
            XCTAssertTrue(messages.contains { $0.hasPrefix("'method' must be one of macenko, reinhard") }, "\(messages)")
        }
    }

    /// The resolved text of a flow (defaults and overrides in) parses back to the same flow.
    func testResolvedTextParsesToTheSameFlow() throws {
        let flow = try FlowFile.parse(good, path: "test.yaml", catalog: catalog, overrides: ["scale.factor=7", "label.model={name: large, width: 8, orders: [h]}"])
        let again = try FlowFile.parse(flow.resolvedText, path: "resolved.yaml", catalog: catalog)
        XCTAssertEqual(again.name, flow.name)
        XCTAssertEqual(again.output, flow.output)
        XCTAssertEqual(again.seed, flow.seed)
        XCTAssertEqual(again.onError, flow.onError)
        let (a, b) = (flow.sources + flow.stages, again.sources + again.stages)
        XCTAssertEqual(a.map(\.name), b.map(\.name))
        XCTAssertEqual(a.map(\.kind.name), b.map(\.kind.name))
        XCTAssertEqual(a.map(\.from), b.map(\.from))
        XCTAssertEqual(a.map(\.workers), b.map(\.workers))
        XCTAssertEqual(a.map(\.onError), b.map(\.onError))
        XCTAssertEqual(a.map(\.parameters), b.map(\.parameters))
        XCTAssertEqual(try decode(Scale.self, again.stages[0]).factor, 7)
        XCTAssertEqual(try decode(Label.self, again.stages[1]).model.width, 8)
    }

    func testOverridesAreAppliedAndValidated() throws {
        let flow = try FlowFile.parse(good, path: "test.yaml", catalog: catalog, overrides: ["scale.factor=7", "source.count=9", "seed=11"])
        XCTAssertEqual(try decode(Scale.self, flow.stages[0]).factor, 7)
        XCTAssertEqual(try decode(Numbers.self, flow.source).count, 9)
        XCTAssertEqual(flow.seed, 11)
        // A bad value or key given with --set is reported at that argument with the value, not at the
        // flow file's first line.
        let bad = issues(good, overrides: ["scale.factor=lots"])
        XCTAssertEqual(bad.map(\.description), ["--set scale.factor=lots: 'factor' must be a number in -100.0…100.0 (got 'lots')"])
        let unknown = issues(good, overrides: ["scale.facter=2"])
        XCTAssertTrue(unknown.first?.description.hasPrefix("--set scale.facter=2: unknown key 'facter'") ?? false, "\(unknown)")
        let nested = issues(good, overrides: ["label.model={name: small, width: wide}"])
        XCTAssertTrue(nested.first?.description.hasPrefix("--set label.model={name: small, width: wide}: 'width' must be") ?? false, "\(nested)")
        XCTAssertTrue(nested.first?.description.hasSuffix("(got 'wide')") ?? false, "\(nested)")
        XCTAssertTrue(issues(good, overrides: ["nothing.x=1"]).contains { $0.message.contains("no step named 'nothing'") })
    }

    func testUnknownKeyNamesLineColumnAndSuggestion() {
        let yaml = good.replacingOccurrences(of: "    factor: 3", with: "    facter: 3")
        assertIssue(yaml, line: 9, column: 5, contains: "unknown key 'facter' in stage 'scale' (did you mean 'factor'?)")
    }

    func testNamedParametersTakeANameOrAMappingOfFields() throws {
        func model(_ text: String) throws -> Label.Model {
            try decode(Label.self, FlowFile.parse(good.replacingOccurrences(of: "  - stage: label", with: "  - stage: label\n    model: \(text)"),
                                                  path: "test.yaml", catalog: catalog).stages[1]).model
        }
        XCTAssertEqual(try decode(Label.self, FlowFile.parse(good, path: "test.yaml", catalog: catalog).stages[1]).model.name, "small")
        XCTAssertEqual(try model("large").name, "large")
        XCTAssertNil(try model("large").width)
        let set = try model("{name: large, width: 8, orders: [h, v_flip], kernels: [3, 5]}")
        XCTAssertEqual(set.name, "large")
        XCTAssertEqual(set.width, 8)
        XCTAssertEqual(set.orders, ["h", "v_flip"])
        XCTAssertEqual(set.kernels, [3, 5])
        let withModel = { (text: String) in self.good.replacingOccurrences(of: "  - stage: label", with: "  - stage: label\n    model: \(text)") }
        assertIssue(withModel("{name: large, widht: 8}"), line: 12, column: 26, contains: "unknown key 'widht' in 'model' (did you mean 'width'?)")
        assertIssue(withModel("{name: larg}"), line: 12, column: 19, contains: "(did you mean 'large'?)")
        assertIssue(withModel("{width: 8}"), line: 12, column: 12, contains: "'model' needs `name:`")
        assertIssue(withModel("{name: small, width: 99}"), line: 12, column: 33, contains: "'width' must be an integer in 1…64")
        assertIssue(withModel("{name: small, kernels: [3, 11]}"), line: 12, column: 39, contains: "'kernels' must be an integer in 1…9")
        assertIssue(withModel("{name: small, orders: h}"), line: 12, column: 34, contains: "'orders' must be a list")
    }

    func testDuplicateKeysAndEncodingsAreNamedBriefly() throws {
        let duplicated = good.replacingOccurrences(of: "seed: 3", with: "seed: 3\nseed: 4")
        let found = issues(duplicated)
        XCTAssertEqual(found.count, 1)
        XCTAssertTrue(found[0].message.contains("the key 'seed' appears twice"), found[0].description)
        XCTAssertFalse(found[0].description.contains("prefix"), "the message quotes the file: \(found[0].description)")
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("utf16-\(UUID()).yaml")
        defer { try? FileManager.default.removeItem(at: file) }
        try good.data(using: .utf16)!.write(to: file)
        XCTAssertThrowsError(try FlowFile.load(file.path, catalog: catalog)) { error in
            XCTAssertTrue("\(error)".contains("not UTF-8 text (it is UTF-16); save it as UTF-8"), "\(error)")
        }
    }

    func testWrongTypes() {
        assertIssue(good.replacingOccurrences(of: "factor: 3", with: "factor: three"), line: 9, column: 13, contains: "'factor' must be a number")
        assertIssue(good.replacingOccurrences(of: "count: 5", with: "count: 0"), line: 6, column: 10, contains: "'count' must be an integer in 1…1000000")
        assertIssue(good.replacingOccurrences(of: "workers: 2", with: "workers: many"), line: 10, column: 14, contains: "'workers' must be an integer")
        assertIssue(good.replacingOccurrences(of: "factor: 3", with: "scales: [0.5, big]"), line: 9, column: 13, contains: "'scales' must be a list of numbers")
        assertIssue(good.replacingOccurrences(of: "factor: 3", with: "method: macenco"), line: 9, column: 13, contains: "(did you mean 'macenko'?)")
    }

    func testMissingFilesAndRequiredParameters() {
        assertIssue(good.replacingOccurrences(of: "count: 5", with: "list: /no/such/file.csv"), line: 6, column: 9, contains: "nothing found at '/no/such/file.csv'")
        assertIssue(good.replacingOccurrences(of: "    prefix: \"n=\"\n", with: ""), line: 12, column: 5, contains: "needs 'prefix'")
    }

    func testImpossibleGraphs() {
        // print reads text, scale emits numbers
        let mismatch = good.replacingOccurrences(of: "  - stage: label\n", with: "")
        assertIssue(mismatch, line: 11, column: 12, contains: "stage 'print' reads texts but 'scale' emits numbers")
        let dangling = good.replacingOccurrences(of: "  - stage: label\n", with: "  - stage: label\n    from: scaler\n")
        assertIssue(dangling, line: 12, column: 11, contains: "'from: scaler' names no earlier step (did you mean 'scale'?)")
        let duplicate = good.replacingOccurrences(of: "  - stage: label\n", with: "  - stage: scale\n  - stage: label\n")
        assertIssue(duplicate, line: 11, column: 5, contains: "a step named 'scale' already exists")
        assertIssue(good.replacingOccurrences(of: "stage: label", with: "stage: lable"), line: 11, column: 12, contains: "unknown stage kind 'lable' (did you mean 'label'?)")
    }

    /// A flow of 20,000 steps: names are looked up, not searched (checking was quadratic in the
    /// number of steps), and a bad `from:` at its end lists a few earlier steps, not all of them.
    func testLongFlowsAreCheckedAndMessagesStayShort() throws {
        var yaml = "flow: long\nsource:\n  kind: numbers\nstages:\n"
        for i in 0..<20_000 { yaml += "  - stage: scale\n    name: s\(i)\n" }
        let flow = try FlowFile.parse(yaml, path: "long.yaml", catalog: catalog)
        XCTAssertEqual(flow.stages.count, 20_000)
        XCTAssertEqual(flow.stages.last?.from, ["s19998"])
        let found = issues(yaml + "  - stage: label\n    from: s20000\n")
        XCTAssertEqual(found.count, 1)
        XCTAssertTrue(found[0].message.contains("earlier steps: …, s19988, "), found[0].message)
        XCTAssertLessThan(found[0].message.count, 400, found[0].message)
    }

    func testYAMLSyntaxAndShapeErrors() {
        assertIssue("flow: x\nsource: [unclosed\n", line: 3, column: 1, contains: "not valid YAML")
        assertIssue("- just\n- a list\n", line: 1, column: 1, contains: "a flow file is a mapping")
        assertIssue("flow: x\nsource:\n  kind: numbers\nstages: 3\n", line: 4, column: 9, contains: "'stages' must be a non-empty list")
        assertIssue("flow: x\nsourc:\n  kind: numbers\nstages:\n  - stage: label\n", line: 2, column: 1, contains: "unknown key 'sourc'")
    }

    func testAllIssuesAreReportedAtOnce() {
        let yaml = good.replacingOccurrences(of: "factor: 3", with: "factor: x").replacingOccurrences(of: "count: 5", with: "cnt: 5")
        XCTAssertGreaterThanOrEqual(issues(yaml).count, 2)
    }
}
