import ArgumentParser
import Foundation
import Stages
import TileCache

/// `ssmamba cache stats|verify|merge`.
struct CacheCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cache",
        abstract: "Inspect, check and combine tile caches (LMDB directories).",
        subcommands: [Warm.self, Stats.self, Verify.self, Merge.self])

    struct Warm: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Fill a flow's cache: run its deterministic prefix (source → … → cache); present tiles are skipped, so it resumes after a crash or Ctrl-C.",
            discussion: "--shard i/n takes every n-th slide from the i-th (0-based); under Slurm, SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT give it. Point each shard at its own cache path (--set cache.path=…) and combine them with `ssmamba cache merge`.")
        @Argument(help: "The flow file (YAML).") var flow: String
        @Option(help: "This job's share of the slides: i/n (0 ≤ i < n).") var shard: String?
        @Option(name: .customLong("set"), parsing: .singleValue, help: "Override a parameter: step.parameter=value.") var overrides: [String] = []
        @Option(help: "Run folder (default: the flow's `output` + /warm, or /warm-shard-i-of-n for a shard: concurrent shards keep their own reports).") var out: String?

        func run() throws {
            let environment = ProcessInfo.processInfo.environment
            var share = shard
            if share == nil, let id = environment["SLURM_ARRAY_TASK_ID"], let count = environment["SLURM_ARRAY_TASK_COUNT"] {
                share = "\(id)/\(count)"
            }
            var file = try FlowRunner.warmUpPrefix(of: FlowCommands.load(flow, overrides: overrides))
            if let share {
                // Every source of the warm-up that can be sharded (the slides sources) takes the same share.
                let slideSources = file.sources.filter { $0.kind.parameters.contains { $0.name == "shard" } }.map(\.name)
                guard !slideSources.isEmpty else { throw CommandFailure("--shard splits slide sources; this flow's cache is fed by none") }
                file = try FlowRunner.warmUpPrefix(of: FlowCommands.load(flow, overrides: overrides + slideSources.map { "\($0).shard=\(share)" }))
            }
            let folder = share.map { "/warm-shard-" + $0.replacingOccurrences(of: "/", with: "-of-") } ?? "/warm"
            // A warm-up run again continues filling the cache: its report replaces the last one's.
            try FlowCommands.execute(file, out: out ?? file.output + folder, earlier: .writeOver)
        }
    }

    struct Stats: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Records, bytes, compression ratio, per-source counts and parameter fingerprints.")
        @Argument(help: "A cache directory.") var path: String
        @Flag(help: "Print JSON instead of text.") var json = false

        func run() throws {
            let stats: TileStore.Statistics
            do { stats = try TileStore(path: path, readOnly: true).statistics() } catch { throw CommandFailure(String(describing: error)) }
            let hex = { (v: UInt64) in String(format: "%016llx", v) }
            if json {
                let object: [String: Any] = [
                    "path": path, "records": stats.records, "stored_bytes": stats.storedBytes, "raw_bytes": stats.rawBytes,
                    "compression_ratio": stats.compressionRatio,
                    "per_source": Dictionary(uniqueKeysWithValues: stats.perSource.map { (hex($0.key), $0.value) }),
                    "per_parameter_fingerprint": Dictionary(uniqueKeysWithValues: stats.perParameters.map { (hex($0.key), $0.value) }),
                ]
                print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]), as: UTF8.self))
                return
            }
            print("\(path): \(stats.records) records, \(stats.storedBytes) bytes stored for \(stats.rawBytes) raw (ratio \(String(format: "%.2f", stats.compressionRatio)))")
            print("sources:")
            for (source, count) in stats.perSource.sorted(by: { $0.key < $1.key }) { print("  \(hex(source))  \(count) tiles") }
            print("parameter fingerprints:")
            for (fingerprint, count) in stats.perParameters.sorted(by: { $0.key < $1.key }) { print("  \(hex(fingerprint))  \(count) tiles") }
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Decode every record and check every checksum; exit 1 listing any damaged keys (--repair removes them, so the next run writes them again).")
        @Argument(help: "A cache directory.") var path: String
        @Flag(help: "Remove the damaged records; the next run of the flow (or `cache warm`) writes them again.") var repair = false

        func run() throws {
            let damaged: [(key: String, reason: String)]
            let records: Int
            let store: TileStore
            do {
                store = try TileStore(path: path, readOnly: !repair)
                damaged = try store.verify()
                records = try store.statistics().records
            } catch { throw CommandFailure(String(describing: error)) }
            if damaged.isEmpty {
                print("\(path): all \(records) records decode and match their checksums")
                return
            }
            for entry in damaged { print("damaged: \(entry.key): \(entry.reason)") }
            if repair {
                let removed: Int
                do { removed = try store.removeDamaged() } catch { throw CommandFailure(String(describing: error)) }
                print("\(path): removed \(removed) damaged of \(records) records; run the flow (or `ssmamba cache warm`) to write them again")
                return
            }
            print("\(path): \(damaged.count) of \(records) records are damaged; `ssmamba cache verify --repair \(path)` removes them, then the next run writes them again")
            throw ExitCode(1)
        }
    }

    struct Merge: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy into one cache the records it lacks from others (e.g. the shards of a sharded warm-up).")
        @Option(help: "The cache to merge into (created if absent).") var into: String
        @Argument(help: "Caches to merge from.") var sources: [String]

        func run() throws {
            do {
                let target = try TileStore(path: into)
                for source in sources {
                    let (copied, damaged) = try target.merge(from: try TileStore(path: source, readOnly: true))
                    print("\(source): \(copied) new records copied into \(into)" + (damaged.isEmpty ? "" : ", \(damaged.count) damaged records skipped"))
                    for line in damaged { print("  damaged: \(line)") }
                }
            } catch let error as CacheError { throw CommandFailure(error.description) }
        }
    }
}
