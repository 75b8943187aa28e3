import ArgumentParser
import Flow
import Foundation
import Stages

/// `ssmamba flow check|docs`.
struct FlowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flow", abstract: "Validate flow files; print the reference of every stage and parameter.",
        subcommands: [Check.self, Docs.self])

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Validate a flow file (keys, types, files, graph) without running it.")
        @Argument(help: "The flow file (YAML).") var flow: String
        @Option(name: .customLong("set"), parsing: .singleValue, help: "Override a parameter: step.parameter=value.") var overrides: [String] = []

        func run() throws {
            let file = try FlowCommands.load(flow, overrides: overrides)
            let problems = FlowPreflight.problems(file)
            guard problems.isEmpty else {
                throw CommandFailure("\(flow): the flow is well formed but cannot run here (\(problems.count) problem(s)):\n" + problems.map(\.description).joined(separator: "\n"))
            }
            let steps = file.sources + file.stages
            print("\(flow): valid flow '\(file.name)' with \(steps.count) steps")
            for step in steps {
                let from = step.from.isEmpty ? "" : " ← \(step.from.joined(separator: " + "))"
                print("  \(step.name) (\(step.kind.name))\(from)")
            }
        }
    }

    struct Docs: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print every source, stage and parameter with its default as Markdown.")
        func run() { print(Catalog.markdown, terminator: "") }
    }
}
