import Foundation

/// Progress of a long command: a bar on a terminal, JSON lines (at most one per second) otherwise.
final class CommandProgress {
    let total: Int
    let label: String
    private var done = 0
    private let started = Date()
    private var lastJSON = Date.distantPast
    private let terminal = isatty(STDERR_FILENO) == 1

    init(total: Int, label: String) {
        self.total = total
        self.label = label
    }

    func advance(_ count: Int = 1) {
        done += count
        let now = Date()
        if terminal {
            let width = 30, filled = total > 0 ? width * done / total : width
            let rate = Double(done) / max(now.timeIntervalSince(started), 1e-9)
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
            FileHandle.standardError.write(Data(String(format: "\r%@ %@ %d/%d  %.1f/s", label, bar, done, total, rate).utf8))
        } else if now.timeIntervalSince(lastJSON) >= 1 || done == total {
            lastJSON = now
            FileHandle.standardError.write(Data("{\"event\":\"progress\",\"task\":\"\(label)\",\"done\":\(done),\"total\":\(total)}\n".utf8))
        }
    }

    func finish() {
        if terminal { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
