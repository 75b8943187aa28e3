import Foundation

/// One item a stage could not process, and why.
public struct FailureRecord: Codable, Sendable, Equatable {
    public let item: String
    public let reason: String

    public init(item: String, reason: String) { (self.item, self.reason) = (item, reason) }
}

/// What one stage did during a run.
public struct StageReport: Codable, Sendable {
    public let name: String
    public let workers: Int
    public let ordered: Bool
    public let onError: ErrorPolicy
    public let itemsIn: Int
    public let itemsOut: Int
    public let failed: Int
    /// The first `StageStatistics.failuresKept` failures; `failed` is the exact total.
    public let failures: [FailureRecord]
    /// Seconds the workers spent processing (summed over workers).
    public let busySeconds: Double
    /// Seconds the workers waited for input (an upstream bottleneck) and for room downstream
    /// (a downstream bottleneck), summed over workers.
    public let waitingForInputSeconds: Double
    public let waitingForOutputSeconds: Double
    public let itemsPerSecond: Double
    public let queueCapacity: Int
    public let queuePeak: Int
    public let queueNow: Int
    public let finished: Bool
}

/// The outcome of a run: written as `report.json` and `report.md` in the run folder.
public struct FlowReport: Codable, Sendable {
    public enum Status: String, Codable, Sendable { case completed, cancelled, failed }

    public let flow: String
    public let status: Status
    /// Why the run stopped early (nil when it completed).
    public let stopReason: String?
    public let startedAt: Date
    public let seconds: Double
    public let stages: [StageReport]
    /// Run-wide counters: cache hits and misses, tiles passed through unchanged, …
    public let counters: [String: Int]
    /// Metrics the flow produced (accuracy, loss, …).
    public let metrics: [String: Double]
    /// The process's peak resident memory so far, in MB.
    public var peakResidentMegabytes: Double = 0
    /// Pictures the stages wrote (curves, confusion matrices), shown in report.md.
    public var pictures: [Picture] = []

    /// A picture a stage wrote into the run folder.
    public struct Picture: Codable, Sendable, Equatable {
        public let stage: String
        public let title: String
        /// Relative to the run folder.
        public let path: String
    }

    /// Total failures over all stages.
    public var failures: Int { stages.reduce(0) { $0 + $1.failed } }

    /// The stage that spent the most time working per worker: where to look first.
    public var bottleneck: String? {
        stages.max { $0.busySeconds / Double($0.workers) < $1.busySeconds / Double($1.workers) }?.name
    }

    /// Writes `report.json` and `report.md` into `folder` (created if needed).
    public func write(to folder: URL) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try JSONEncoder.runFiles.encode(self).write(to: folder.appendingPathComponent("report.json"), options: .atomic)
        try Data(markdown.utf8).write(to: folder.appendingPathComponent("report.md"), options: .atomic)
    }

    /// The report as Markdown for people.
    public var markdown: String {
        var lines = ["# Run report: \(flow)", ""]
        lines.append("- status: **\(status.rawValue)**" + (stopReason.map { " (\($0))" } ?? ""))
        lines.append("- started: \(ISO8601DateFormatter().string(from: startedAt))")
        lines.append("- duration: \(String(format: "%.2f", seconds)) s")
        lines.append("- failures: \(failures)")
        lines.append(String(format: "- peak resident memory: %.0f MB", peakResidentMegabytes))
        if let bottleneck { lines.append("- busiest stage (work per worker): `\(bottleneck)`") }
        lines += ["", "## Stages", "",
                  "| stage | workers | in | out | failed | items/s | busy s | waiting for input s | waiting for output s | queue peak/capacity |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for s in stages {
            lines.append("| \(s.name) | \(s.workers)\(s.ordered ? " (ordered)" : "") | \(s.itemsIn) | \(s.itemsOut) | \(s.failed) | "
                + String(format: "%.1f | %.2f | %.2f | %.2f", s.itemsPerSecond, s.busySeconds, s.waitingForInputSeconds, s.waitingForOutputSeconds)
                + " | \(s.queuePeak)/\(s.queueCapacity) |")
        }
        if !counters.isEmpty {
            lines += ["", "## Counters", "", "| counter | value |", "|---|---:|"]
            for (name, value) in counters.sorted(by: { $0.key < $1.key }) { lines.append("| \(name) | \(value) |") }
        }
        // Per-process figures of a run on several processes (`<stage>.rank<r>.<name>`) get a table of their own.
        let perRank = metrics.keys.compactMap { key -> (stage: String, rank: Int, name: String, key: String)? in
            let parts = key.split(separator: ".", maxSplits: 2).map(String.init)
            guard parts.count == 3, parts[1].hasPrefix("rank"), let rank = Int(parts[1].dropFirst(4)) else { return nil }
            return (parts[0], rank, parts[2], key)
        }
        let rankKeys = Set(perRank.map(\.key))
        let general = metrics.filter { !rankKeys.contains($0.key) }
        if !general.isEmpty {
            lines += ["", "## Metrics", "", "| metric | value |", "|---|---:|"]
            for (name, value) in general.sorted(by: { $0.key < $1.key }) { lines.append("| \(name) | \(String(format: "%.6g", value)) |") }
        }
        if !perRank.isEmpty {
            let names = Array(Set(perRank.map(\.name))).sorted()
            lines += ["", "## Processes", "", "| stage | rank | " + names.joined(separator: " | ") + " |", "|---|---:|" + String(repeating: "---:|", count: names.count)]
            let rows = Dictionary(grouping: perRank) { "\($0.stage).rank\($0.rank)" }.values.map { ($0[0].stage, $0[0].rank) }
            for (stage, rank) in rows.sorted(by: { ($0.0, $0.1) < ($1.0, $1.1) }) {
                let cells = names.map { name in metrics["\(stage).rank\(rank).\(name)"].map { String(format: "%.6g", $0) } ?? "" }
                lines.append("| \(stage) | \(rank) | " + cells.joined(separator: " | ") + " |")
            }
        }
        if !pictures.isEmpty {
            lines += ["", "## Pictures", ""]
            for picture in pictures.sorted(by: { ($0.stage, $0.path) < ($1.stage, $1.path) }) {
                lines += ["**\(picture.stage)**: \(picture.title)", "", "![\(picture.title)](\(picture.path))", ""]
            }
        }
        let failing = stages.filter { $0.failed > 0 }
        if !failing.isEmpty {
            lines += ["", "## Failures", ""]
            for s in failing {
                lines.append("### \(s.name): \(s.failed)")
                for f in s.failures { lines.append("- \(f.item): \(f.reason)") }
                if s.failed > s.failures.count { lines.append("- … and \(s.failed - s.failures.count) more") }
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

extension JSONEncoder {
    /// The encoder of the JSON files a run writes (report.json, run.json, `model info --json`):
    /// indented, keys sorted and in snake_case, dates ISO 8601.
    public static var runFiles: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return encoder
    }
}
