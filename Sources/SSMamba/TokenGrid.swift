/// Where the tokens of a batch sit on the H×W patch grid.
///
/// Every image of a batch has the same number of tokens (`count`): all H·W of them, or the
/// visible subset under masked pretraining. `positions[b·count + k]` is the grid index
/// (row·W + column) of token k of image b, ascending within each image (raster order), so tokens
/// are stored in raster order whatever the scan direction.
public struct TokenGrid: Sendable, Equatable {
    public let batch: Int
    public let height: Int
    public let width: Int
    public let count: Int
    public let positions: [Int]

    public init(batch: Int, height: Int, width: Int, positions: [Int]) {
        precondition(batch > 0 && positions.count % batch == 0, "positions must split evenly over the batch")
        let count = positions.count / batch
        for b in 0..<batch {
            let row = positions[(b * count)..<((b + 1) * count)]
            precondition(zip(row, row.dropFirst()).allSatisfy { $0 < $1 } && (row.first ?? 0) >= 0 && (row.last ?? 0) < height * width,
                         "positions of image \(b) must be ascending grid indices below \(height * width)")
        }
        (self.batch, self.height, self.width, self.count, self.positions) = (batch, height, width, count, positions)
    }

    /// Every cell of the grid, for every image.
    public static func full(batch: Int, height: Int, width: Int) -> TokenGrid {
        let cells = Array(0..<(height * width))
        return TokenGrid(batch: batch, height: height, width: width, positions: Array([[Int]](repeating: cells, count: batch).joined()))
    }

    public var cells: Int { height * width }
    public var isFull: Bool { count == cells }
}
