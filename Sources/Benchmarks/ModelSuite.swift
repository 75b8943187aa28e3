import Foundation
import SSMamba
import Tensors

/// `Benchmarks model-suite [--quick]`: every model case in a process of its own (so peak memory is
/// the case's), ours and the PyTorch peer alternating, then a table with the ratios and a JSON
/// record under benchmarks/results/.
enum ModelSuite {
    struct Case {
        let batch: Int
        let mode: String
        let steps: Int
    }

    static func run(quick: Bool, model: String) throws {
        let config = try ModelConfiguration.named(model)
        let cases: [Case] = (quick ? [8] : [8, 32, 64]).flatMap { batch in
            [Case(batch: batch, mode: "infer", steps: quick ? 2 : 9), Case(batch: batch, mode: "train", steps: quick ? 1 : 5)]
        }
        let python = peerPython()
        if python == nil { say("PyTorch peer not installed (make bench installs it into .venv-peers): measuring ours only") }
        let configJSON = String(decoding: try JSONEncoder().encode(config), as: UTF8.self)
        var results: [(case: Case, ours: [String: Any], peer: [String: Any])] = []
        // The sgemm rate moves with the shared machine's load: measured before every case, and
        // shares are given of the highest rate seen (the conservative denominator).
        var sgemmRates: [Double] = []
        for (i, c) in cases.enumerated() {
            sgemmRates.append(TensorSelfCheck.gemmRate(size: 1024))
            let ours = runJSON([CommandLine.arguments[0], "model", "--model", model, "--batch", "\(c.batch)", "--mode", c.mode, "--steps", "\(c.steps)"])
            var peer: [String: Any] = [:]
            if let python {
                peer = runJSON([python, peerScript(), "--config", configJSON, "--batch", "\(c.batch)", "--mode", c.mode, "--steps", "\(c.steps)"])
            }
            results.append((c, ours, peer))
            say("[\(i + 1)/\(cases.count)] \(c.mode) b\(c.batch) done")
        }
        let sgemmRate = sgemmRates.max() ?? 0
        for (c, ours, peer) in results { printRow(c, ours, peer, sgemmRate: sgemmRate) }
        print(String(format: "sgemm 1024³ before each case: %.0f–%.0f GFLOP/s; shares are of the highest", sgemmRates.min() ?? 0, sgemmRate))
        let rows: [[String: Any]] = zip(results, sgemmRates).map { result, rate in
            ["batch": result.case.batch, "mode": result.case.mode, "ours": result.ours, "pytorch": result.peer, "sgemm_gflops_1024_before": rate]
        }
        try record(rows, model: model, sgemmRate: sgemmRate, quick: quick)
    }

    /// A progress line written at once (unbuffered), so it shows when the output goes to a file
    /// or a pipe too.
    static func say(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    static func printRow(_ c: Case, _ ours: [String: Any], _ peer: [String: Any], sgemmRate: Double) {
        if c.batch == 8 && c.mode == "infer" {
            print("case            ours img/s  PyTorch img/s  ratio   ours peak MB  PyTorch peak MB  ours GFLOP/s (of sgemm)")
        }
        let ourRate = ours["images_per_second"] as? Double, peerRate = peer["images_per_second"] as? Double
        let ratio = (ourRate != nil && peerRate != nil) ? String(format: "%5.2f×", ourRate! / peerRate!) : "   –  "
        let gflops = ours["gflops"] as? Double ?? 0
        let name = "\(c.mode) b\(c.batch)".padding(toLength: 14, withPad: " ", startingAt: 0)
        let peerText = peerRate.map { String(format: "%13.2f", $0) } ?? String((peer["error"] as? String ?? "–").prefix(13)).padding(toLength: 13, withPad: " ", startingAt: 0)
        print(name, String(format: "%11.2f", ourRate ?? 0), peerText, " ", ratio,
              String(format: "%12.0f %16.0f", ours["peak_rss_mb"] as? Double ?? 0, peer["peak_rss_mb"] as? Double ?? 0),
              String(format: "%10.1f (%2.0f %%)", gflops, 100 * gflops / sgemmRate))
        if let spread = ours["spread"] as? Double, spread > 0.25 { print("  note: our timings spread \(Int(spread * 100)) %: the machine was noisy") }
    }

    static func record(_ rows: [[String: Any]], model: String, sgemmRate: Double, quick: Bool) throws {
        let path = try MachineInfo.save("model-\(model)", quick: quick, ["model": model, "sgemm_gflops_1024": sgemmRate, "cases": rows])
        print("results: \(path)")
    }

    static func peerPython() -> String? {
        let candidates = [ProcessInfo.processInfo.environment["SSMAMBA_PEER_PYTHON"], ".venv-peers/bin/python"].compactMap { $0 }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    static func peerScript() -> String { "scripts/peers/model_peer.py" }

    /// Runs a command and parses the last line of its output as a JSON object.
    static func runJSON(_ command: [String]) -> [String: Any] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        let pipe = Pipe()
        process.standardOutput = pipe
        do { try process.run() } catch { return ["error": "could not start \(command[0]): \(error)"] }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let lastLine = String(decoding: data, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? ""
        guard process.terminationStatus == 0,
              let object = try? JSONSerialization.jsonObject(with: Data(lastLine.utf8)) as? [String: Any] else {
            return ["error": "exit \(process.terminationStatus)"]
        }
        return object
    }
}
