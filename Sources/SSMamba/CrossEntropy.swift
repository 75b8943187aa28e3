import Foundation
import Tensors

/// Softmax cross-entropy with label smoothing ε, averaged over the batch:
///
///     q = (1 − ε)·onehot(label) + ε/K,   L = −(1/B) Σ_b Σ_c q_c log softmax(logits_b)_c
///     ∂L/∂logits_b = (softmax(logits_b) − q) / B
public enum CrossEntropy {
    public static func loss(logits: Tensor, labels: [Int], smoothing: Float = 0) -> (loss: Float, gradient: Tensor) {
        precondition(logits.rank == 2 && logits.shape[0] == labels.count, "logits \(logits.shape) vs \(labels.count) labels")
        let (batch, classes) = (logits.shape[0], logits.shape[1])
        let probabilities = logits.softmax()
        var gradient = probabilities
        var total = 0.0
        let offValue = Double(smoothing) / Double(classes)
        for b in 0..<batch {
            precondition(labels[b] >= 0 && labels[b] < classes, "label \(labels[b]) outside 0..<\(classes)")
            // log-softmax computed stably from the logits themselves.
            let row = (0..<classes).map { Double(logits[b, $0]) }
            let top = row.max()!
            let logSum = top + Foundation.log(row.reduce(0) { $0 + Foundation.exp($1 - top) })
            for c in 0..<classes {
                let target = offValue + (c == labels[b] ? 1 - Double(smoothing) : 0)
                total -= target * (row[c] - logSum)
                gradient[b, c] = Float((Double(probabilities[b, c]) - target) / Double(batch))
            }
        }
        return (Float(total / Double(batch)), gradient)
    }
}
