import Foundation

/// Linear warm-up then cosine decay (per optimizer step, 0-based):
///
///     lr(s) = base·(s + 1)/warmup                                       for s < warmup
///     lr(s) = min + ½(base − min)(1 + cos(π·(s − warmup)/(total − warmup)))   afterwards
public struct CosineSchedule: Codable, Sendable, Equatable {
    public var baseRate: Float
    public var minimumRate: Float
    public var warmupSteps: Int
    public var totalSteps: Int

    public init(baseRate: Float, minimumRate: Float = 0, warmupSteps: Int, totalSteps: Int) {
        (self.baseRate, self.minimumRate, self.warmupSteps, self.totalSteps) = (baseRate, minimumRate, warmupSteps, totalSteps)
    }

    public func rate(atStep step: Int) -> Float {
        if step < warmupSteps { return baseRate * Float(step + 1) / Float(warmupSteps) }
        let span = max(1, totalSteps - warmupSteps)
        let progress = min(1, Double(step - warmupSteps) / Double(span))
        return minimumRate + 0.5 * (baseRate - minimumRate) * Float(1 + Foundation.cos(Double.pi * progress))
    }
}
