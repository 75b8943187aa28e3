import Foundation
import Randomness
import SSMamba
import Tensors

/// One model case in this process: `Benchmarks model --model ssmamba_tiny --batch 8 --mode train`.
/// Prints one JSON object: images/s (median of the timed steps), spread, peak resident memory and
/// achieved GFLOP/s by the model's counted cost (ModelCost). Peak memory is the process's, which is
/// why the suite runs every case in a process of its own.
enum ModelBenchmarks {
    /// Training runs `replicas` copies of the model side by side (nil: as a training stage chooses,
    /// `TrainingReplicas.plan`).
    static func runCase(model name: String, batch: Int, training: Bool, steps: Int, precision requested: GEMMPrecision = .float32,
                        replicas requestedReplicas: Int? = nil) throws {
        let precision = requested.onThisCPU  // as a training stage chooses
        let config = try ModelConfiguration.named(name)
        var rng = RandomGenerator(seed: 1)
        let images = Tensor.normal([batch, config.channels, config.imageSize, config.imageSize], using: &rng)
        let labels = (0..<batch).map { $0 % config.classes }
        var settings = TrainingSettings(schedule: CosineSchedule(baseRate: 1e-4, warmupSteps: 1, totalSteps: 1000))
        settings.precision = precision
        let first = try Classifier(config: config, using: &rng)
        let (replicas, workers) = TrainingReplicas<Classifier>.plan(batch: batch, asked: training ? requestedReplicas : 1,
                                                                    replicaBytes: TrainingReplicas<Classifier>.replicaBytes(parameters: first.parameterCount))
        let trainers = try [Trainer(model: first, settings: settings)]
            + (1..<replicas).map { _ in Trainer(model: try Classifier(config: config, using: &rng), settings: settings) }
        let trainer = TrainingReplicas(trainers, workersPerReplica: workers)
        let timing = Timing.measure(repeats: steps) {
            if training {
                _ = try? trainer.step(images: images, labels: labels)
            } else {
                _ = trainer.main.predict(images)
            }
        }
        let cost = ModelCost(config: config)
        let imagesPerSecond = Double(batch) / timing.median
        let flopsPerImage = training ? cost.trainingFLOPs : cost.forwardFLOPs
        let result: [String: Any] = [
            "implementation": "ssmamba-swift", "model": name, "batch": batch, "mode": training ? "train" : "infer",
            "images_per_second": imagesPerSecond, "spread": timing.spread, "peak_rss_mb": peakResidentBytes() / 1_048_576,
            "gflops": flopsPerImage * imagesPerSecond / 1e9, "steps": steps,
            "precision": training ? precision.rawValue : "fp32", "precision_requested": requested.rawValue, "gemm": BLAS.library.rawValue,
            "replicas": replicas, "workers_per_replica": training ? workers : ThreadPlan.kernelWorkers,
        ]
        let data = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }
}

/// The selective scan alone (B 8, L 196, D 384, N 16, as in ssmamba_tiny), ns per state update.
enum ScanBenchmarks {
    /// Two operand sets: a raw Δ in storage order (the kernel alone), and the call DMS makes
    /// (Δ = softplus(δ·Wᵀ + b) with dt_proj fused, rank 12, visiting a 14×14 grid column by column).
    static func run(quick: Bool) {
        var rng = RandomGenerator(seed: 3)
        let side = 14  // the 224-px grid of 16-px patches
        let (b, l, d, n, rank) = (8, side * side, 384, 16, 12)
        var a = Tensor(zeros: [d, n])
        for i in 0..<d { for j in 0..<n { a[i, j] = -Float(j + 1) } }
        let raw = SelectiveScan.Operands(u: Tensor.normal([b, l, d], using: &rng),
                                         delta: Tensor.uniform([b, l, d], low: 0.001, high: 0.1, using: &rng), A: a,
                                         B: Tensor.normal([b, l, n], using: &rng), C: Tensor.normal([b, l, n], using: &rng),
                                         D: Tensor(repeating: 1, shape: [d]))
        var fused = raw
        fused.delta = Tensor.normal([b, l, rank], using: &rng) * 0.1
        fused.deltaSoftplus = true
        // b = softplus⁻¹(dt) for dt in [0.001, 0.1], as the initialisation makes it.
        var bias = Tensor.uniform([d], low: 0.001, high: 0.1, using: &rng)
        for i in 0..<d { bias.scalars[i] += Foundation.log(-Foundation.expm1(-bias.scalars[i])) }
        fused.deltaProjection = (Tensor.uniform([d, rank], low: -0.29, high: 0.29, using: &rng), bias)
        fused.order = (0..<b).flatMap { _ in (0..<l).map { t in (t % side) * side + t / side } }
        let g = Tensor.normal([b, l, d], using: &rng)
        let updates = Double(b * l * d * n)
        let saved = ThreadPlan.kernelWorkers
        print("selective scan (B \(b), L \(l), D \(d), N \(n))     workers   ns/update (median, min…max)")
        for (label, x) in [("raw Δ", raw), ("as DMS calls it", fused)] {
            for workers in [1, saved] {
                ThreadPlan.kernelWorkers = workers
                let repeats = quick ? 3 : 7
                var forwardSaved = SelectiveScan.forward(x).saved
                let forward = Timing.measure(repeats: repeats) { forwardSaved = SelectiveScan.forward(x).saved }
                let backward = Timing.measure(repeats: repeats) { _ = SelectiveScan.backward(x, saved: forwardSaved, gradOutput: g) }
                for (name, t) in [("forward, \(label)", forward), ("backward (recomputes h), \(label)", backward)] {
                    print(name.padding(toLength: 44, withPad: " ", startingAt: 0),
                          String(format: "%5d   %6.3f (%.3f…%.3f)", workers, t.median / updates * 1e9, t.low / updates * 1e9, t.high / updates * 1e9))
                }
                if workers == saved { break }
            }
        }
        ThreadPlan.kernelWorkers = saved
    }
}
