import Foundation
import SSMamba
import Tensors

/// One model case in this process: `Benchmarks model --model ssmamba_tiny --batch 8 --mode train`.
/// Prints one JSON object: images/s (median of the timed steps), spread, peak resident memory and
/// achieved GFLOP/s by the model's counted cost (ModelCost). Peak memory is the process's, which is
/// why the suite runs every case in a process of its own.
enum ModelBenchmarks {
    static func runCase(model name: String, batch: Int, training: Bool, steps: Int) throws {
        let config = try ModelConfiguration.named(name)
        var rng = RandomGenerator(seed: 1)
        let images = Tensor.normal([batch, config.channels, config.imageSize, config.imageSize], using: &rng)
        let labels = (0..<batch).map { $0 % config.classes }
        let model = try Classifier(config: config, using: &rng)
        let trainer = ClassifierTrainer(model: model, settings: TrainingSettings(schedule: CosineSchedule(baseRate: 1e-4, warmupSteps: 1, totalSteps: 1000)))
        let timing = Timing.measure(repeats: steps) {
            if training {
                trainer.trainStep(images: images, labels: labels)
            } else {
                _ = trainer.predict(images)
            }
        }
        let cost = ModelCost(config: config)
        let imagesPerSecond = Double(batch) / timing.median
        let flopsPerImage = training ? cost.trainingFLOPs : cost.forwardFLOPs
        let result: [String: Any] = [
            "implementation": "ssmamba-swift", "model": name, "batch": batch, "mode": training ? "train" : "infer",
            "images_per_second": imagesPerSecond, "spread": timing.spread, "peak_rss_mb": peakResidentBytes() / 1_048_576,
            "gflops": flopsPerImage * imagesPerSecond / 1e9, "steps": steps,
        ]
        let data = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }
}
