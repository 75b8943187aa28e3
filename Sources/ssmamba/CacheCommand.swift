import ArgumentParser
import Foundation
import TileCache

/// `ssmamba cache stats|verify|merge`.
struct CacheCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cache",
        abstract: "Inspect, check and combine tile caches (LMDB directories).",
        subcommands: [Stats.self, Verify.self, Merge.self])

    struct Stats: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Records, bytes, compression ratio, per-source counts and parameter fingerprints.")
        @Argument(help: "A cache directory.") var path: String
        @Flag(help: "Print JSON instead of text.") var json = false

        func run() throws {
            let stats: TileStore.Statistics
            do { stats = try TileStore(path: path, readOnly: true).statistics() } catch { throw ValidationError(String(describing: error)) }
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
        static let configuration = CommandConfiguration(abstract: "Decode every record and check every checksum; exit 1 listing any damaged keys.")
        @Argument(help: "A cache directory.") var path: String

        func run() throws {
            let damaged: [(key: String, reason: String)]
            let records: Int
            do {
                let store = try TileStore(path: path, readOnly: true)
                damaged = try store.verify()
                records = try store.statistics().records
            } catch { throw ValidationError(String(describing: error)) }
            if damaged.isEmpty {
                print("\(path): all \(records) records decode and match their checksums")
                return
            }
            for entry in damaged { print("damaged: \(entry.key): \(entry.reason)") }
            print("\(path): \(damaged.count) of \(records) records are damaged; re-run the warm-up to rewrite them")
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
            } catch let error as CacheError { throw ValidationError(error.description) }
        }
    }
}
