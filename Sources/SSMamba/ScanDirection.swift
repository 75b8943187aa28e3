/// A scan order over the patch grid (docs/MODEL.md, DMS step 3). For grid cell (i, j) of an H×W grid:
///
///     h:  t = i·W + j                     (rows, left to right)
///     v:  t = j·H + i                     (columns, top to bottom)
///     wk: t = ((i div k)·⌈W/k⌉ + (j div k))·k² + (i mod k)·k + (j mod k)
///                                          (k×k windows row-major, raster inside each)
///     *_flip: the same order reversed.
///
/// Under masking, the visible cells are visited in the order of their t.
public enum ScanDirection: Sendable, Hashable, CustomStringConvertible {
    case horizontal(flipped: Bool)
    case vertical(flipped: Bool)
    case window(size: Int, flipped: Bool)

    /// Parses the names used in configs and flow files: h, h_flip, v, v_flip, w2, w4_flip, …
    public init?(name: String) {
        let flipped = name.hasSuffix("_flip")
        let base = flipped ? String(name.dropLast(5)) : name
        switch base {
        case "h": self = .horizontal(flipped: flipped)
        case "v": self = .vertical(flipped: flipped)
        default:
            guard base.hasPrefix("w"), let size = Int(base.dropFirst()), size >= 1 else { return nil }
            self = .window(size: size, flipped: flipped)
        }
    }

    public var description: String {
        switch self {
        case .horizontal(let f): "h" + (f ? "_flip" : "")
        case .vertical(let f): "v" + (f ? "_flip" : "")
        case .window(let k, let f): "w\(k)" + (f ? "_flip" : "")
        }
    }

    var flipped: Bool {
        switch self {
        case .horizontal(let f), .vertical(let f), .window(_, let f): f
        }
    }

    /// The visiting time of grid cell (i, j), before any flip.
    func time(row i: Int, column j: Int, height: Int, width: Int) -> Int {
        switch self {
        case .horizontal: return i * width + j
        case .vertical: return j * height + i
        case .window(let k, _):
            let windowsPerRow = (width + k - 1) / k
            return ((i / k) * windowsPerRow + (j / k)) * k * k + (i % k) * k + (j % k)
        }
    }

    /// For each image, the token indices (into its raster-ordered tokens) in visiting order:
    /// result[b·count + s] is the token visited at step s.
    public func order(for grid: TokenGrid) -> [Int] {
        var result = [Int]()
        result.reserveCapacity(grid.positions.count)
        for b in 0..<grid.batch {
            let tokens = grid.positions[(b * grid.count)..<((b + 1) * grid.count)]
            var keyed = tokens.enumerated().map { (k, cell) in
                (time(row: cell / grid.width, column: cell % grid.width, height: grid.height, width: grid.width), k)
            }
            keyed.sort { $0.0 < $1.0 }
            if flipped { keyed.reverse() }
            result += keyed.map { $0.1 }
        }
        return result
    }
}
