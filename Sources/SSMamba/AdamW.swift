import Foundation
import Tensors

/// AdamW with decoupled weight decay (Loshchilov & Hutter; PyTorch's `torch.optim.AdamW`):
///
///     p ← p − lr·λ·p                          (only parameters with `decays`; not biases, norms, A_log, D)
///     m ← β₁m + (1 − β₁)g,   v ← β₂v + (1 − β₂)g²
///     p ← p − lr · (m / (1 − β₁ᵗ)) / (√(v / (1 − β₂ᵗ)) + ε)
public final class AdamW {
    public struct Settings: Codable, Sendable, Equatable {
        public var beta1: Float = 0.9
        public var beta2: Float = 0.999
        public var epsilon: Float = 1e-8
        public var weightDecay: Float = 0.05
        public init() {}
    }

    public let settings: Settings
    /// Updates taken so far (t in the bias corrections).
    public private(set) var step = 0
    private(set) var firstMoments: [String: Tensor] = [:]
    private(set) var secondMoments: [String: Tensor] = [:]

    public init(settings: Settings = Settings()) { self.settings = settings }

    /// One step; `scales[i]` (when given) multiplies the learning rate of `parameters[i]`
    /// (layer-wise decay), weight decay included.
    public func update(_ parameters: [Parameter], learningRate baseRate: Float, scales: [Float]? = nil) {
        precondition(scales == nil || scales!.count == parameters.count, "one learning-rate scale per parameter")
        step += 1
        let (b1, b2) = (settings.beta1, settings.beta2)
        let correction1 = 1 - Float(Foundation.pow(Double(b1), Double(step)))
        let correction2 = 1 - Float(Foundation.pow(Double(b2), Double(step)))
        for (index, p) in parameters.enumerated() {
            let lr = baseRate * (scales?[index] ?? 1)
            // Taken out of the dictionaries while updated, so the moments are not copied on write.
            var m = firstMoments.removeValue(forKey: p.name) ?? Tensor(zeros: p.value.shape)
            var v = secondMoments.removeValue(forKey: p.name) ?? Tensor(zeros: p.value.shape)
            let decay: Float = p.decays ? 1 - lr * settings.weightDecay : 1
            let epsilon = settings.epsilon
            p.gradient.withUnsafeBufferPointer { g in
                m.withUnsafeMutableBufferPointer { ms in v.withUnsafeMutableBufferPointer { vs in
                    p.value.withUnsafeMutableBufferPointer { ws in
                        for i in 0..<ws.count {
                            ms[i] = b1 * ms[i] + (1 - b1) * g[i]
                            vs[i] = b2 * vs[i] + (1 - b2) * g[i] * g[i]
                            let mHat = ms[i] / correction1, vHat = vs[i] / correction2
                            ws[i] = ws[i] * decay - lr * mHat / (vHat.squareRoot() + epsilon)
                        }
                    }
                } }
            }
            firstMoments[p.name] = m
            secondMoments[p.name] = v
        }
    }

    /// Moments as a safetensors file (`m.NAME`, `v.NAME`) for checkpoints; other entries of
    /// the file are ignored on restore.
    func momentFile() -> SafeTensorsFile {
        var file = SafeTensorsFile()
        for (name, m) in firstMoments { file.set("m." + name, m) }
        for (name, v) in secondMoments { file.set("v." + name, v) }
        return file
    }

    func restore(step: Int, moments file: SafeTensorsFile) throws {
        self.step = step
        firstMoments = [:]
        secondMoments = [:]
        for name in file.entries.keys {
            if name.hasPrefix("m.") { firstMoments[String(name.dropFirst(2))] = try file.tensor(name) }
            if name.hasPrefix("v.") { secondMoments[String(name.dropFirst(2))] = try file.tensor(name) }
        }
    }
}

/// Gradient clipping by global norm: if ‖g‖₂ over all parameters exceeds `maxNorm`, every
/// gradient is scaled by maxNorm/‖g‖₂. Returns the norm before clipping.
@discardableResult
public func clipGradients(_ parameters: [Parameter], maxNorm: Float) -> Float {
    var total = 0.0
    for p in parameters { total += Double(p.gradient.withUnsafeBufferPointer { Reduction.dot($0, $0) }) }
    let norm = Float(total.squareRoot())
    if maxNorm > 0 && norm > maxNorm {
        let scale = maxNorm / (norm + 1e-6)
        for p in parameters { p.gradient = p.gradient * scale }
    }
    return norm
}
