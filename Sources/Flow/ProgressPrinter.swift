import Foundation

/// Shows a running flow: on a terminal, a live line per stage (items, rate, queue fill, failures)
/// redrawn in place; otherwise one JSON line per event (`start`, `progress`, `finish`) on stderr.
public final class ProgressPrinter: @unchecked Sendable {
    public let terminal: Bool
    private let lock = NSLock()
    private var drawnLines = 0
    private var lastJSON = 0.0
    /// Seconds between `progress` JSON lines (terminal lines redraw on every update).
    public var jsonInterval = 2.0

    public init(terminal: Bool = isatty(STDERR_FILENO) == 1) { self.terminal = terminal }

    public func start(flow: String, runFolder: String) {
        if terminal {
            write("▶ \(flow) → \(runFolder)\n")
        } else {
            json(["event": "start", "flow": flow, "run_folder": runFolder])
        }
    }

    public func update(_ report: FlowReport) {
        lock.withLock {
            if terminal {
                redraw(report)
            } else if report.seconds - lastJSON >= jsonInterval {
                lastJSON = report.seconds
                if !report.metrics.isEmpty {
                    json(["event": "metrics", "seconds": round(report.seconds * 10) / 10, "metrics": report.metrics])
                }
                for stage in report.stages {
                    json(["event": "progress", "stage": stage.name, "seconds": round(report.seconds * 10) / 10,
                          "in": stage.itemsIn, "out": stage.itemsOut, "failed": stage.failed,
                          "items_per_second": round(stage.itemsPerSecond * 10) / 10,
                          "queue": stage.queueNow, "queue_capacity": stage.queueCapacity])
                }
            }
        }
    }

    public func finish(_ report: FlowReport, reportFolder: String) {
        lock.withLock {
            if terminal {
                redraw(report)
                write("■ \(report.status.rawValue) in \(String(format: "%.1f", report.seconds)) s, \(report.failures) failed"
                      + (report.stopReason.map { " (\($0))" } ?? "") + "; report: \(reportFolder)/report.md\n")
            } else {
                json(["event": "finish", "flow": report.flow, "status": report.status.rawValue,
                      "seconds": round(report.seconds * 100) / 100, "failures": report.failures,
                      "stop_reason": report.stopReason ?? "", "report": "\(reportFolder)/report.md"])
            }
        }
    }

    private func redraw(_ report: FlowReport) {
        var text = drawnLines > 0 ? "\u{1B}[\(drawnLines)A" : ""
        for s in report.stages {
            let queue = s.queueCapacity > 0 ? "queue \(s.queueNow)/\(s.queueCapacity)" : ""
            let line = String(format: "  %-14@ %8d in %8d out %6d failed %9.1f/s  %@%@",
                              s.name as NSString, s.itemsIn, s.itemsOut, s.failed, s.itemsPerSecond,
                              queue as NSString, (s.finished ? "  done" : "") as NSString)
            text += "\u{1B}[2K" + line + "\n"
        }
        var count = report.stages.count
        if !report.metrics.isEmpty {
            let shown = report.metrics.sorted { $0.key < $1.key }.suffix(6).map { String(format: "%@ %.4g", $0.key, $0.value) }
            text += "\u{1B}[2K  " + shown.joined(separator: "  ") + "\n"
            count += 1
        }
        drawnLines = count
        write(text)
    }

    private func json(_ fields: [String: Any]) {
        guard let data = try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys]) else { return }
        FileHandle.standardError.write(data + Data("\n".utf8))
    }

    private func write(_ text: String) { FileHandle.standardError.write(Data(text.utf8)) }
}
