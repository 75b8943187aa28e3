import Foundation
import Tensors

/// Facts about the machine recorded with every benchmark result.
enum MachineInfo {
    static var record: [String: Any] {
        let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("model name") }?.split(separator: ":").last?
            .trimmingCharacters(in: .whitespaces) ?? "unknown"
        let environment = ProcessInfo.processInfo.environment
        return ["cpu": cpu, "cores": ProcessInfo.processInfo.activeProcessorCount, "blas": BLAS.configuration,
                "openblas_coretype": environment["OPENBLAS_CORETYPE"] ?? "", "openblas_l2_size": environment["OPENBLAS_L2_SIZE"] ?? "",
                "target_cpu": environment["SSMAMBA_TARGET_CPU"] ?? "haswell",
                "memory_gb": Double(ProcessInfo.processInfo.physicalMemory) / 1_073_741_824]
    }

    /// Writes a result record under benchmarks/results/ and returns its path.
    static func save(_ suite: String, quick: Bool, _ body: [String: Any]) throws -> String {
        var record = body
        record["suite"] = suite
        record["quick"] = quick
        record["date"] = ISO8601DateFormatter().string(from: Date())
        record["machine"] = MachineInfo.record
        let stamp = ISO8601DateFormatter().string(from: Date()).replacingOccurrences(of: ":", with: "-")
        let url = URL(fileURLWithPath: "benchmarks/results/\(suite)\(quick ? "-quick" : "")-\(stamp).json")
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try JSONSerialization.data(withJSONObject: record, options: [.prettyPrinted, .sortedKeys]).write(to: url)
        return url.path
    }
}
