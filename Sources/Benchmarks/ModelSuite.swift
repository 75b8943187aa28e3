import Foundation
import SSMamba
import Tensors

/// `Benchmarks model-suite [--quick]`: every model case in a process of its own (so peak memory is
/// the case's), ours and the PyTorch peers alternating — eager with the reference's scan loop,
/// eager with the precomputed scan (decays and inputs batched over the steps), and the faster of
/// the two under torch.compile (its compilation timed apart) — then a table with the ratios and a
/// JSON record under benchmarks/results/. On CPUs with bfloat16 hardware, training is timed with
/// bf16 products too.
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
        var results: [(case: Case, ours: [String: Any], peers: [String: [String: Any]])] = []
        // The sgemm rate moves with the shared machine's load: measured before every case, and
        // shares are given of the highest rate seen (the conservative denominator).
        var sgemmRates: [Double] = []
        for (i, c) in cases.enumerated() {
            sgemmRates.append(TensorSelfCheck.gemmRate(size: 1024))
            var ours = runJSON([CommandLine.arguments[0], "model", "--model", model, "--batch", "\(c.batch)", "--mode", c.mode, "--steps", "\(c.steps)"])
            // Where the CPU multiplies bfloat16, training is also timed with bf16 products.
            if c.mode == "train" && OneDNN.hasBFloat16Hardware {
                ours["bf16"] = runJSON([CommandLine.arguments[0], "model", "--model", model, "--batch", "\(c.batch)", "--mode", c.mode,
                                        "--steps", "\(c.steps)", "--precision", "bf16"])
            }
            var peers: [String: [String: Any]] = [:]
            if let python {
                func run(_ arguments: [String]) -> [String: Any] {
                    runJSON([python, peerScript(), "--config", configJSON, "--batch", "\(c.batch)", "--mode", c.mode, "--steps", "\(c.steps)"] + arguments)
                }
                peers[Peer.eagerReference.rawValue] = run(["--scan", "reference"])
                peers[Peer.eagerPrecomputed.rawValue] = run(["--scan", "precomputed"])
                // Which scan is faster depends on the shapes (on ssmamba_micro the loop is); the faster one is compiled.
                let precomputedFaster = (peers[Peer.eagerPrecomputed.rawValue]?["images_per_second"] as? Double ?? 0)
                    > (peers[Peer.eagerReference.rawValue]?["images_per_second"] as? Double ?? 0)
                peers[Peer.compiled.rawValue] = run(["--scan", precomputedFaster ? "precomputed" : "reference", "--compile"])
            }
            results.append((c, ours, peers))
            say("[\(i + 1)/\(cases.count)] \(c.mode) b\(c.batch) done")
        }
        let sgemmRate = sgemmRates.max() ?? 0
        for (c, ours, peers) in results { printRow(c, ours, peers, sgemmRate: sgemmRate) }
        print(String(format: "sgemm 1024³ before each case: %.0f–%.0f GFLOP/s; shares are of the highest", sgemmRates.min() ?? 0, sgemmRate))
        let rows: [[String: Any]] = zip(results, sgemmRates).map { result, rate in
            ["batch": result.case.batch, "mode": result.case.mode, "ours": result.ours, "pytorch": result.peers, "sgemm_gflops_1024_before": rate]
        }
        try record(rows, model: model, sgemmRate: sgemmRate, quick: quick)
    }

    /// A progress line written at once (unbuffered), so it shows when the output goes to a file
    /// or a pipe too.
    static func say(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    /// The PyTorch peers, each a run of scripts/peers/model_peer.py.
    enum Peer: String, CaseIterable {
        case eagerReference = "eager_reference_scan", eagerPrecomputed = "eager_precomputed_scan", compiled = "compile_faster_scan"
    }

    static func printRow(_ c: Case, _ ours: [String: Any], _ peers: [String: [String: Any]], sgemmRate: Double) {
        if c.batch == 8 && c.mode == "infer" {
            print("case        ours img/s  eager (ref. scan)  eager (precomp.)  compiled (s to compile)  vs best eager  vs compiled  ours MB  eager MB  ours GFLOP/s (of sgemm)")
        }
        func rate(_ peer: Peer) -> Double? { peers[peer.rawValue]?["images_per_second"] as? Double }
        func text(_ peer: Peer, width: Int) -> String {
            guard let r = rate(peer) else {
                return String((peers[peer.rawValue]?["error"] as? String ?? "–").prefix(width)).padding(toLength: width, withPad: " ", startingAt: 0)
            }
            return String(format: "%\(width).2f", r)
        }
        func ratio(_ ours: Double?, _ theirs: Double?) -> String {
            guard let ours, let theirs else { return "  –  " }
            return String(format: "%5.2f×", ours / theirs)
        }
        let ourRate = ours["images_per_second"] as? Double
        let bestEager = [rate(.eagerReference), rate(.eagerPrecomputed)].compactMap { $0 }.max()
        let compileSeconds = (peers[Peer.compiled.rawValue]?["compile_seconds"] as? Double).map { String(format: " (%.0f)", $0) } ?? ""
        let eagerMB = [Peer.eagerReference, .eagerPrecomputed].compactMap { peers[$0.rawValue]?["peak_rss_mb"] as? Double }.min() ?? 0
        let gflops = ours["gflops"] as? Double ?? 0
        let name = "\(c.mode) b\(c.batch)".padding(toLength: 10, withPad: " ", startingAt: 0)
        print(name, String(format: "%11.2f", ourRate ?? 0), text(.eagerReference, width: 18), text(.eagerPrecomputed, width: 17),
              (text(.compiled, width: 10) + compileSeconds).padding(toLength: 24, withPad: " ", startingAt: 0),
              ratio(ourRate, bestEager).padding(toLength: 14, withPad: " ", startingAt: 0), ratio(ourRate, rate(.compiled)).padding(toLength: 12, withPad: " ", startingAt: 0),
              String(format: "%7.0f %9.0f", ours["peak_rss_mb"] as? Double ?? 0, eagerMB),
              String(format: "%10.1f (%2.0f %%)", gflops, 100 * gflops / sgemmRate))
        if let bf16 = ours["bf16"] as? [String: Any], let bf16Rate = bf16["images_per_second"] as? Double {
            print("  bf16 products: " + String(format: "%.2f", bf16Rate) + " img/s (\(ratio(bf16Rate, ourRate).trimmingCharacters(in: .whitespaces)) fp32's), peak "
                  + String(format: "%.0f", bf16["peak_rss_mb"] as? Double ?? 0) + " MB")
        }
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
