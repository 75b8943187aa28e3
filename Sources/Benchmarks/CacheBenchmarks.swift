import Foundation
import Randomness
import Slides
import Tensors
import TileCache

/// `Benchmarks cache [--quick]`: real H&E tiles (3×224×224 uint8 from both sample slides) written
/// to the cache with zstd-1 and uncompressed, then random reads into model-ready batches of 64
/// (float32, normalised, NCHW) with 1 and 2 readers; the Python pipeline (lmdb + numpy on raw
/// bytes, converted and normalised per batch) on the same tiles in the same run.
enum CacheBenchmarks {
    static func run(quick: Bool) throws {
        let tiles = try realTiles(limit: quick ? 400 : 1_600)
        let root = URL(fileURLWithPath: "data/bench/cache")
        try? FileManager.default.removeItem(at: root)
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        // The raw tiles for the Python peer.
        var dump = Data()
        for (_, tile) in tiles { dump.append(contentsOf: tile.pixels) }
        try dump.write(to: root.appendingPathComponent("tiles.u8"))
        let mean: [Float] = [0.485, 0.456, 0.406], std: [Float] = [0.229, 0.224, 0.225]
        var rows: [[String: Any]] = []
        for codec in [TileRecord.Codec.zstd, .none] {
            let path = root.appendingPathComponent(codec == .zstd ? "zstd" : "none").path
            let store = try TileStore(path: path, codec: codec)
            let start = DispatchTime.now().uptimeNanoseconds
            for chunk in stride(from: 0, to: tiles.count, by: 64) { try store.write(Array(tiles[chunk..<min(chunk + 64, tiles.count)])) }
            let writeRate = Double(tiles.count) / seconds(since: start)
            let stats = try store.statistics()
            var row: [String: Any] = ["codec": codec == .zstd ? "zstd-1" : "none", "tiles": tiles.count, "write_tiles_per_second": writeRate,
                                      "compression_ratio": stats.compressionRatio]
            var rng = RandomGenerator(seed: 3)
            let batches = (0..<(quick ? 10 : 40)).map { _ in (0..<64).map { _ in tiles[rng.integer(below: tiles.count)].key } }
            _ = try store.batch(batches[0], mean: mean, std: std)  // warm page cache
            for readers in [1, 2] {
                var rates: [Double] = []
                for _ in 0..<(quick ? 1 : 3) {
                    let begin = DispatchTime.now().uptimeNanoseconds
                    let work = batches
                    DispatchQueue.concurrentPerform(iterations: readers) { reader in
                        var buffer = Tensor(zeros: [0])  // one batch buffer per reader, reused
                        for b in stride(from: reader, to: work.count, by: readers) { _ = try? store.batch(work[b], mean: mean, std: std, into: &buffer) }
                    }
                    rates.append(Double(batches.count * 64) / seconds(since: begin))
                }
                rates.sort()
                row["read_\(readers)_tiles_per_second"] = rates[rates.count / 2]
                row["read_\(readers)_spread"] = (rates.last! - rates.first!) / rates[rates.count / 2]
            }
            rows.append(row)
        }
        var peer: [String: Any] = [:]
        if let python = ModelSuite.peerPython() {
            var runs: [[String: Any]] = []
            for _ in 0..<(quick ? 1 : 3) {
                runs.append(ModelSuite.runJSON([python, "scripts/peers/cache_peer.py", root.appendingPathComponent("tiles.u8").path,
                                                "\(tiles.count)", "\(quick ? 10 : 40)"]))
            }
            peer = runs.sorted { ($0["read_tiles_per_second"] as? Double ?? 0) < ($1["read_tiles_per_second"] as? Double ?? 0) }[runs.count / 2]
            peer["runs"] = runs.count
        }
        print("cache (3×224×224 uint8 H&E tiles)  write tiles/s  ratio   1 reader  2 readers   (model-ready batches of 64)")
        for row in rows {
            print((row["codec"] as! String).padding(toLength: 34, withPad: " ", startingAt: 0),
                  String(format: "%13.0f %6.2f %10.0f %10.0f", row["write_tiles_per_second"] as! Double, row["compression_ratio"] as! Double,
                         row["read_1_tiles_per_second"] as! Double, row["read_2_tiles_per_second"] as! Double))
        }
        if let write = peer["write_tiles_per_second"] as? Double, let read = peer["read_tiles_per_second"] as? Double {
            print("Python lmdb + numpy (raw bytes)".padding(toLength: 34, withPad: " ", startingAt: 0), String(format: "%13.0f %6s %10.0f", write, "1.00", read))
            let ours = rows[0]["read_1_tiles_per_second"] as! Double
            print(String(format: "ratio, zstd-1 reader vs Python reader: %.2f×", ours / read))
        }
        print("results: \(try MachineInfo.save("cache", quick: quick, ["ours": rows, "python": peer]))")
    }

    static func seconds(since start: UInt64) -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }

    /// `side`² level-0 crops on a half-overlapping grid over both samples (real H&E, background
    /// included), at most `limit`, half from each slide when `perSlide` is set.
    static func realTiles(limit: Int, side: Int = 224, perSlide: Bool = false) throws -> [(key: TileKey, tile: CachedTile)] {
        var result: [(key: TileKey, tile: CachedTile)] = []
        for name in ["cmu_small_region.svs", "tcga-cr-7395-01a-01-ts1.svs"] {
            let path = "data/samples/\(name)"
            let slide = try TIFFSlide(path: path)
            let source = try Fingerprint.source(path: path)
            let quota = perSlide ? result.count + limit / 2 : limit
            for y in stride(from: 0, to: slide.levels[0].height - side, by: side / 2) {
                for x in stride(from: 0, to: slide.levels[0].width - side, by: side / 2) where result.count < quota {
                    let image = try slide.readRegion(level0Origin: (x, y), size: (side, side), level: 0)
                    let key = TileKey(source: source, parameters: 1, x: x, y: y, micronsPerPixel: 0.5)
                    result.append((key, CachedTile(channels: 3, height: side, width: side, pixels: image.pixels, level0Origin: (x, y),
                                                   requestedMicronsPerPixel: 0.5, effectiveMicronsPerPixel: 0.5, source: source, parameters: 1)))
                }
            }
        }
        return result
    }
}
