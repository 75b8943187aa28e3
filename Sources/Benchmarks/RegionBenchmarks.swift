import Foundation
import Randomness
import Slides
import Tensors

/// `Benchmarks regions [--quick]`: random 256² level-0 region reads per second on a generated
/// 8192² JPEG pyramid (256² tiles), aligned and unaligned to the tile grid, with the tile cache
/// off (every read decodes), on 1 and 2 threads; the same reads through SSMamba's OpenSlide-backed
/// reader (the one vendor formats use); then tifffile and OpenSlide (Python) on the same file and
/// the same origins, in the same run, and the decode floor: the tiles each read covers, in memory,
/// decoded whole by the system's TurboJPEG (what this reader links) and by imagecodecs (what
/// tifffile calls). A reader's overhead is its read rate against its decoder's floor.
enum RegionBenchmarks {
    static let side = 8192

    /// The 8192² synthetic-tissue JPEG pyramid (0.25 µm/px), made once under data/bench.
    static func pyramid() throws -> URL {
        let directory = URL(fileURLWithPath: "data/bench")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let file = directory.appendingPathComponent("pyramid-8192-jpeg.tif")
        if !FileManager.default.fileExists(atPath: file.path) {
            print("generating \(file.path) (8192² synthetic tissue, JPEG q80, 256² tiles)…")
            try PyramidWriter.write(texture(), to: file, micronsPerPixel: 0.25, compression: .jpeg(quality: 80), tileSize: 256)
        }
        return file
    }

    static func run(quick: Bool) throws {
        let directory = URL(fileURLWithPath: "data/bench")
        let file = try pyramid()
        let count = quick ? 300 : 2_000
        let repeats = quick ? 1 : 3
        var rng = RandomGenerator(seed: 42)
        var rows: [[String: Any]] = []
        for aligned in [true, false] {
            let origins: [(Int, Int)] = (0..<count).map { _ in
                aligned ? (rng.integer(below: side / 256 - 1) * 256, rng.integer(below: side / 256 - 1) * 256)
                        : (rng.integer(below: side - 512) + 1, rng.integer(below: side - 512) + 1)
            }
            let originsFile = directory.appendingPathComponent("origins-\(aligned ? "aligned" : "unaligned").json")
            try JSONSerialization.data(withJSONObject: origins.map { [$0.0, $0.1] }).write(to: originsFile)
            var row: [String: Any] = ["case": aligned ? "aligned" : "unaligned", "reads": count, "repeats": repeats]
            var samples: [String: [Double]] = [:]
            // One untimed pass first, so the file is in the page cache for everyone (the peer
            // reads it after us), then ours and the peers alternate, `repeats` times.
            _ = try measureOurs(file: file.path, origins: Array(origins.prefix(200)), threads: 1)
            for _ in 0..<repeats {
                for threads in [1, 2] {
                    samples["ours_\(threads)_thread_reads_per_second", default: []].append(try measureOurs(file: file.path, origins: origins, threads: threads))
                }
                samples["ours_openslide_reader_reads_per_second", default: []].append(
                    try measureOurs(file: file.path, origins: origins, threads: 1, reader: { try OpenSlideSlide(path: $0) }))
                if let python = ModelSuite.peerPython() {
                    let peer = ModelSuite.runJSON([python, "scripts/peers/region_peer.py", file.path, originsFile.path])
                    for (key, value) in peer {
                        if let number = value as? Double { samples[key, default: []].append(number) } else { row[key] = value }
                    }
                }
            }
            for (key, values) in samples {
                let sorted = values.sorted()
                let median = sorted[sorted.count / 2]
                row[key] = median
                row[key.replacingOccurrences(of: "_per_second", with: "_spread")] = (sorted.last! - sorted.first!) / median
                if (sorted.last! - sorted.first!) / median > 0.25 { print("note: \(key) spread \(Int(100 * (sorted.last! - sorted.first!) / median)) %: the machine was noisy") }
            }
            rows.append(row)
        }
        print("random 256² reads/s    ours 1 thread  ours 2 threads  ours via OpenSlide  tifffile  OpenSlide  ours/tifffile  ours/OpenSlide  decode floor: TurboJPEG  imagecodecs")
        for row in rows {
            let ours = row["ours_1_thread_reads_per_second"] as? Double ?? 0
            let tiff = row["tifffile_reads_per_second"] as? Double, slide = row["openslide_reads_per_second"] as? Double
            print((row["case"] as! String).padding(toLength: 21, withPad: " ", startingAt: 0),
                  String(format: "%14.0f %15.0f %19.0f %9.0f %10.0f %14@ %15@ %23.0f %12.0f", ours, row["ours_2_thread_reads_per_second"] as? Double ?? 0,
                         row["ours_openslide_reader_reads_per_second"] as? Double ?? 0,
                         tiff ?? 0, slide ?? 0, tiff.map { String(format: "%.2f×", ours / $0) } ?? "–",
                         slide.map { String(format: "%.2f×", ours / $0) } ?? "–",
                         row["system_turbojpeg_decode_only_reads_per_second"] as? Double ?? 0,
                         row["imagecodecs_decode_only_reads_per_second"] as? Double ?? 0))
        }
        print("results: \(try MachineInfo.save("regions", quick: quick, ["file": file.path, "cases": rows]))")
    }

    /// Reads per second of random 256² level-0 regions on `threads` threads, by the native reader
    /// with its tile cache off unless `reader` opens another.
    static func measureOurs(file: String, origins: [(Int, Int)], threads: Int,
                            reader: (String) throws -> any SlideReader = { try TIFFSlide(path: $0, cache: DecodedTileCache(capacityBytes: 0)) }) throws -> Double {
        let slide = try reader(file)
        _ = try slide.readRegion(level0Origin: (0, 0), size: (256, 256), level: 0)  // handles open, code warm
        let start = DispatchTime.now().uptimeNanoseconds
        if threads == 1 {
            for o in origins { _ = try slide.readRegion(level0Origin: o, size: (256, 256), level: 0) }
        } else {
            DispatchQueue.concurrentPerform(iterations: threads) { worker in
                for i in stride(from: worker, to: origins.count, by: threads) {
                    _ = try? slide.readRegion(level0Origin: origins[i], size: (256, 256), level: 0)
                }
            }
        }
        return Double(origins.count) / (Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }

    /// Tissue-like texture: smooth pink/purple fields with nuclei-sized dark blobs and noise, so
    /// JPEG tiles carry realistic entropy.
    static func texture() -> RGBImage {
        var rng = RandomGenerator(seed: 9)
        var pixels = [UInt8](repeating: 0, count: side * side * 3)
        let noise = (0..<4096).map { _ in Int(rng.integer(below: 24)) - 12 }
        for y in 0..<side {
            for x in 0..<side {
                let field = (x / 97 + y / 131) % 3
                let blob = ((x * 7 + y * 13) % 23 < 4) && ((x / 11 + y / 9) % 5 == 0)
                let n = noise[(x * 31 + y * 17) & 4095]
                let o = (y * side + x) * 3
                let (r, g, b) = blob ? (90, 60, 140) : field == 0 ? (230, 170, 200) : field == 1 ? (210, 140, 190) : (245, 235, 240)
                pixels[o] = UInt8(max(0, min(255, r + n)))
                pixels[o + 1] = UInt8(max(0, min(255, g + n)))
                pixels[o + 2] = UInt8(max(0, min(255, b + n)))
            }
        }
        return RGBImage(width: side, height: side, pixels: pixels)
    }
}
