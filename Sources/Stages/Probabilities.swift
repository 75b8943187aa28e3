import Tensors

/// Class probabilities of logits, row by row, for the stages that report predictions.
enum Probabilities {
    /// softmax of each row of (rows, classes) logits (Tensors' vectorised softmax).
    static func rows(_ logits: Tensor) -> [[Double]] {
        let probabilities = logits.softmax()
        let (rows, classes) = (logits.shape[0], logits.shape[1])
        return (0..<rows).map { r in (0..<classes).map { Double(probabilities.scalars[r * classes + $0]) } }
    }

    /// The most probable class of a row (the first on ties).
    static func argmax(_ row: [Double]) -> Int { row.indices.max { row[$0] < row[$1] } ?? 0 }
}
