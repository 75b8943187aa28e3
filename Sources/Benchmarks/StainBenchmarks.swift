import Foundation
import Slides
import Tiling

/// `Benchmarks stain [--quick]`: Macenko, Reinhard and Vahadane on real 224² H&E tiles (tissue
/// tiles of the CMU sample), one thread, fitted once to the tiatoolbox target; the peers
/// (torchstain's numpy backend, plain numpy, staintools + SPAMS) on the same tiles in the same
/// run, ours and theirs alternating; medians of the repeats.
enum StainBenchmarks {
    static func run(quick: Bool) throws {
        let tiles = try tissueTiles(limit: quick ? 24 : 96)
        let root = URL(fileURLWithPath: "data/bench/stain")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        var dump = Data()
        for tile in tiles { dump.append(contentsOf: tile.pixels) }
        try dump.write(to: root.appendingPathComponent("tiles.u8"))
        let targetPath = "data/samples/target_image.png"
        let target = try ImageFile.read(targetPath)
        var ours: [String: [Double]] = [:], peers: [String: [Double]] = [:]
        for _ in 0..<(quick ? 1 : 3) {
            for method in StainMethod.allCases {
                let normalizer = try StainNormalization.fit(method, to: target)
                let subset = method == .vahadane ? Array(tiles.prefix(max(4, tiles.count / 4))) : tiles
                _ = normalizer.normalize(subset[0])
                let start = DispatchTime.now().uptimeNanoseconds
                for tile in subset { _ = normalizer.normalize(tile) }
                ours[method.rawValue, default: []].append(Double(subset.count) / CacheBenchmarks.seconds(since: start))
                // Both cores, as a flow's stain stage with `workers: 2` runs it.
                let begin = DispatchTime.now().uptimeNanoseconds
                DispatchQueue.concurrentPerform(iterations: 2) { worker in
                    for index in stride(from: worker, to: subset.count, by: 2) { _ = normalizer.normalize(subset[index]) }
                }
                ours[method.rawValue + "_2", default: []].append(Double(subset.count) / CacheBenchmarks.seconds(since: begin))
            }
            if let python = ModelSuite.peerPython() {
                let result = ModelSuite.runJSON([python, "scripts/peers/stain_peer.py", root.appendingPathComponent("tiles.u8").path,
                                                 "\(tiles.count)", targetPath])
                for (key, value) in result { if let v = value as? Double { peers[key, default: []].append(v) } }
            }
        }
        func median(_ values: [Double]?) -> Double? {
            guard let values, !values.isEmpty else { return nil }
            return values.sorted()[values.count / 2]
        }
        print("stain normalization, 224² H&E tiles      ours 1 thread  ours 2 threads   torchstain   plain numpy   ours/torchstain (1 / 2 threads)")
        print("(the Python peers run with numpy's default threading: its bundled OpenBLAS may use every core)")
        var rows: [String: Any] = [:]
        for method in StainMethod.allCases {
            let mine = median(ours[method.rawValue])!
            let torch = median(peers["torchstain_\(method.rawValue)"]), numpy = median(peers["numpy_\(method.rawValue)"])
            let staintools = median(peers["staintools_\(method.rawValue)"])
            let both = median(ours[method.rawValue + "_2"]) ?? .nan
            let peerText = method == .vahadane ? (staintools.map { String(format: "staintools %.1f (%.0f× / %.0f×)", $0, mine / $0, both / $0) } ?? "staintools not installed")
                : String(format: "%10.1f   %11.1f   %6.1f× / %.1f×", torch ?? .nan, numpy ?? .nan, mine / (torch ?? .nan), both / (torch ?? .nan))
            print(method.rawValue.padding(toLength: 38, withPad: " ", startingAt: 0), String(format: "%13.1f %15.1f", mine, both), "  ", peerText)
            for (who, values) in [("ours", ours[method.rawValue] ?? []), ("torchstain", peers["torchstain_\(method.rawValue)"] ?? [])] where spread(values) > 0.25 {
                print("  note: \(method.rawValue), \(who): repeats spread \(Int(100 * spread(values))) %: the machine was too noisy to trust this figure")
            }
            rows[method.rawValue] = ["ours": mine, "ours_2_threads": both, "torchstain": torch as Any, "numpy": numpy as Any, "staintools": staintools as Any,
                                     "ours_runs": ours[method.rawValue]!, "spread": spread(ours[method.rawValue]!)]
        }
        print("results: \(try MachineInfo.save("stain", quick: quick, ["tiles": tiles.count, "methods": rows]))")
    }

    static func spread(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.count > 1 ? (sorted.last! - sorted.first!) / sorted[sorted.count / 2] : 0
    }

    /// 224² tiles of the CMU sample's level 0 with at least 70 % tissue.
    static func tissueTiles(limit: Int) throws -> [RGBImage] {
        let slide = try TIFFSlide(path: "data/samples/cmu_small_region.svs")
        let mask = try TissueDetector().detect(slide)
        let positions = try TileGrid(micronsPerPixel: slide.micronsPerPixel!, size: 224, minimumTissue: 0.7)
            .positions(slideWidth: slide.levels[0].width, slideHeight: slide.levels[0].height, slideMicronsPerPixel: slide.micronsPerPixel,
                       mask: mask, path: slide.path)
        return try positions.prefix(limit).map {
            try slide.readRegion(level0Origin: (Int($0.level0X), Int($0.level0Y)), size: (224, 224), level: 0)
        }
    }
}
