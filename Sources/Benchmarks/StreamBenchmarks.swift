import Foundation
import Randomness
import Slides
import SSMamba
import Stages
import Tensors
import TileCache

/// `Benchmarks stream [--quick]`: fine-tuning steps of `ssmamba_micro` (batch 32, the finetune
/// stage's augmentation) fed two ways in the same run, alternating: from augmented batches made
/// beforehand and held in memory (the model alone), and streamed from the tile cache by two reader
/// threads (read, decode, augment ahead of the model); then the peer a user would write: the
/// PyTorch reference model fed by a `DataLoader` over py-lmdb (two workers) and from tensors in
/// memory. Real H&E tiles (64² crops of both sample slides).
enum StreamBenchmarks {
    static func run(quick: Bool) throws {
        let root = URL(fileURLWithPath: "data/bench/stream")
        try? FileManager.default.removeItem(at: root)
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let (batch, steps, rounds) = (32, quick ? 12 : 40, quick ? 2 : 3)
        let tiles = try CacheBenchmarks.realTiles(limit: quick ? 1_024 : 4_096, side: 64, perSlide: true)
        let store = try TileStore(path: root.appendingPathComponent("cache").path)
        for chunk in stride(from: 0, to: tiles.count, by: 256) { try store.write(Array(tiles[chunk..<min(tiles.count, chunk + 256)])) }
        var dump = Data()
        for (_, tile) in tiles { dump.append(contentsOf: tile.pixels) }
        try dump.write(to: root.appendingPathComponent("tiles.u8"))
        var set = TrainingSet()
        for (i, (key, _)) in tiles.enumerated() { try set.append(TrainingTile(entry: CacheEntry(store: store, key: key), label: "c\(i % 3)", source: "s")) }

        var config = try ModelConfiguration.named("ssmamba_micro")
        config.classes = 3
        var augmentation = Augmentation()
        augmentation.cropScale = 0.6...1
        augmentation.brightness = 0.9...1.1
        let reader = CacheBatchReader(tiles: set, augmentation: augmentation, size: config.imageSize, seed: 1)
        let order = EpochOrder(count: set.count, seed: 2)
        let labels = (0..<set.count).map { $0 % 3 }
        var rng = RandomGenerator(seed: 3)
        let trainer = Trainer(model: try Classifier(config: config, using: &rng),
                              settings: TrainingSettings(schedule: CosineSchedule(baseRate: 1e-4, warmupSteps: 1, totalSteps: 100_000)))
        func train(_ batch: CacheBatch) throws { try trainer.step(images: batch.images, labels: batch.members.map { labels[$0] }) }
        // Warm-up: page cache, allocator, kernels.
        for k in 0..<3 { try train(reader.batch(k, of: order.batch(k, size: batch))) }

        var inMemory: [Double] = [], streamed: [Double] = [], waited: [Double] = []
        for round in 0..<rounds {
            let first = (round + 1) * 1_000  // fresh batches each round
            let held = (first..<(first + steps)).map { reader.batch($0, of: order.batch($0, size: batch)) }
            var start = DispatchTime.now().uptimeNanoseconds
            for b in held { try train(b) }
            inMemory.append(Double(steps * batch) / seconds(since: start))
            start = DispatchTime.now().uptimeNanoseconds
            let stream = CacheBatchStream(reader, first: first, count: first + steps, plan: order.batchPlan(size: batch), readers: 2)
            while let b = stream.next() { try train(b) }
            streamed.append(Double(steps * batch) / seconds(since: start))
            waited.append(stream.waitedSeconds)
            stream.stop()
        }
        let ours: [String: Any] = ["in_memory_images_per_second": median(inMemory), "streamed_images_per_second": median(streamed),
                                   "ratio": median(streamed) / median(inMemory), "waited_seconds": median(waited),
                                   "rounds": rounds, "steps": steps, "batch": batch, "model": config.name, "readers": 2]
        var peer: [String: Any] = [:]
        if let python = ModelSuite.peerPython() {
            let configJSON = String(decoding: try JSONEncoder().encode(config), as: UTF8.self)
            peer = ModelSuite.runJSON([python, "scripts/peers/stream_peer.py", "--tiles", root.appendingPathComponent("tiles.u8").path,
                                       "--count", "\(tiles.count)", "--config", configJSON, "--batch", "\(batch)", "--steps", "\(steps)",
                                       "--rounds", "\(rounds)"])
        }
        print("CPU: \(MachineInfo.record["cpu"] ?? "?")")
        print("fine-tuning ssmamba_micro, batch 32, 64² H&E tiles        images/s   vs in memory")
        print(String(format: "ours, augmented batches held in memory             %10.1f", median(inMemory)))
        print(String(format: "ours, streamed from the LMDB cache (2 readers)     %10.1f   %.3f×  (waited %.2f s for data)",
                     median(streamed), median(streamed) / median(inMemory), median(waited)))
        if let memory = peer["in_memory_images_per_second"] as? Double, let loader = peer["dataloader_images_per_second"] as? Double {
            print(String(format: "PyTorch eager, tensors held in memory              %10.1f", memory))
            print(String(format: "PyTorch eager, DataLoader over py-lmdb (2 workers) %10.1f   %.3f×", loader, loader / memory))
            print(String(format: "ours streamed vs PyTorch DataLoader: %.1f×", median(streamed) / loader))
        } else if !peer.isEmpty {
            print("PyTorch peer: \(peer["error"] ?? "no result")")
        } else {
            print("PyTorch peer: not installed (scripts/peers/install.sh)")
        }
        print("results: \(try MachineInfo.save("stream", quick: quick, ["ours": ours, "pytorch": peer]))")
    }

    static func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
    static func seconds(since start: UInt64) -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
}
