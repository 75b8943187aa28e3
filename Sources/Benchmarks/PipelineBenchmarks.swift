import Foundation
import Slides
import Tiling

/// `Benchmarks pipeline [--quick]`: the end-to-end preprocessing, tiled TIFF → tissue → 224² crops
/// at level 0 → Macenko → LMDB cache, as `ssmamba cache warm` runs it (a fresh cache each time),
/// against the Python pipeline a user would write (tifffile + numpy + torchstain + lmdb with a
/// DataLoader of 2 workers), alternating; and the tissue mask alone per slide.
enum PipelineBenchmarks {
    static func run(quick: Bool) throws {
        // The real CMU sample is small (≈ 45 tissue tiles); `--quick` uses it, the full run the
        // 8192² synthetic-tissue pyramid of the regions suite (≈ 1,300 tiles).
        let slide = quick ? "data/samples/cmu_small_region.svs" : try RegionBenchmarks.pyramid().path
        let target = "data/samples/target_image.png"
        let root = URL(fileURLWithPath: "data/bench/pipeline")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let flow = """
            flow: pipeline-benchmark
            output: \(root.appendingPathComponent("run").path)
            source: {kind: slides, path: \(slide)}
            stages:
              - stage: tissue
              - stage: tiles
                mpp: \(quick ? 0.499 : 0.25)
                size: 224
                min_tissue: 0.5
                workers: 2
              - stage: stain
                method: macenko
                target: \(target)
                workers: 2
              - stage: cache
                path: \(root.appendingPathComponent("cache").path)
            """
        let flowPath = root.appendingPathComponent("flow.yaml").path
        try flow.write(toFile: flowPath, atomically: true, encoding: .utf8)
        let tool = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("ssmamba").path
        var ours: [Double] = [], oursTiles = 0, peers: [Double] = [], peerTiles = 0
        var maskOurs: [Double] = [], maskPeer: [Double] = []
        for _ in 0..<(quick ? 1 : 3) {
            try? FileManager.default.removeItem(at: root.appendingPathComponent("cache"))
            _ = ModelSuite.runJSON([tool, "cache", "warm", flowPath, "--out", root.appendingPathComponent("run").path])
            let report = try JSONSerialization.jsonObject(with: Data(contentsOf: root.appendingPathComponent("run/report.json"))) as! [String: Any]
            let written = (report["counters"] as? [String: Int])?["cache.written"] ?? 0
            oursTiles = written
            ours.append(Double(written) / (report["seconds"] as? Double ?? .infinity))
            let reader = try TIFFSlide(path: slide)
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try TissueDetector().detect(reader)
            maskOurs.append(CacheBenchmarks.seconds(since: start))
            if let python = ModelSuite.peerPython() {
                let result = ModelSuite.runJSON([python, "scripts/peers/pipeline_peer.py", slide, target, root.appendingPathComponent("peer-cache").path])
                if let rate = result["tiles_per_second"] as? Double { peers.append(rate); peerTiles = result["tiles"] as? Int ?? 0 }
                if let mask = result["tissue_mask_seconds"] as? Double { maskPeer.append(mask) }
            }
        }
        func median(_ v: [Double]) -> Double { v.isEmpty ? .nan : v.sorted()[v.count / 2] }
        print("end-to-end preprocessing (\((slide as NSString).lastPathComponent), 224² tiles at level 0, Macenko, LMDB)   tiles/s")
        print(String(format: "ours (ssmamba cache warm, 2 workers per stage), %d tiles          %8.1f", oursTiles, median(ours)))
        print(String(format: "Python (tifffile + torchstain + lmdb, DataLoader of 2), %d tiles  %8.1f   ratio %.1f×", peerTiles, median(peers), median(ours) / median(peers)))
        print(String(format: "tissue mask per slide: ours %.3f s (tissue detection with clean-up), numpy Otsu on level 0 %.3f s", median(maskOurs), median(maskPeer)))
        for (who, values) in [("ours", ours), ("Python", peers)] where StainBenchmarks.spread(values) > 0.25 {
            print("  note: \(who): repeats spread \(Int(100 * StainBenchmarks.spread(values))) %: the machine was too noisy to trust this figure")
        }
        print("results: \(try MachineInfo.save("pipeline", quick: quick, ["ours_tiles_per_second": ours, "ours_tiles": oursTiles, "python_tiles_per_second": peers, "python_tiles": peerTiles, "mask_seconds_ours": maskOurs, "mask_seconds_python": maskPeer]))")
    }
}
