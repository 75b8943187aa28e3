import Foundation

/// The one layout of tile tables: the `tiles` command's and the `export` stage's `tiles.csv`, and
/// `evaluate_slides`' per-slide tables (with one probability column per class after these).
///
///     slide, column, row, scale_mpp, effective_mpp, level0_x, level0_y, level0_size, tissue_fraction, file, label
///
/// `slide` is the source file, `level0_x/y` the tile's top-left corner and `level0_size` its side,
/// both in level-0 pixels (empty when the source has no µm/px), `file` the exported image (empty
/// when none was written). Fields are quoted as RFC 4180 says (a path with a comma stays one field).
public enum TileTable {
    public static let columns = ["slide", "column", "row", "scale_mpp", "effective_mpp", "level0_x", "level0_y",
                                 "level0_size", "tissue_fraction", "file", "label"]

    public struct Row: Sendable {
        public var slide: String
        public var column: Int, row: Int
        public var scaleMicronsPerPixel: Double, effectiveMicronsPerPixel: Double
        public var level0X: Int, level0Y: Int
        public var level0Size: Double?
        public var tissueFraction: Double
        public var file: String
        public var label: String

        public init(slide: String, column: Int, row: Int, scaleMicronsPerPixel: Double, effectiveMicronsPerPixel: Double,
                    level0X: Int, level0Y: Int, level0Size: Double?, tissueFraction: Double, file: String = "", label: String = "") {
            (self.slide, self.column, self.row) = (slide, column, row)
            (self.scaleMicronsPerPixel, self.effectiveMicronsPerPixel) = (scaleMicronsPerPixel, effectiveMicronsPerPixel)
            (self.level0X, self.level0Y, self.level0Size, self.tissueFraction) = (level0X, level0Y, level0Size, tissueFraction)
            (self.file, self.label) = (file, label)
        }

        /// A tile's row: `size` pixels across at its effective µm/px, over a slide of `slideMicronsPerPixel`.
        public init(_ tile: Tile, size: Int, slideMicronsPerPixel: Double?, file: String = "") {
            self.init(slide: tile.source, column: tile.column, row: tile.row, scaleMicronsPerPixel: tile.requestedMicronsPerPixel,
                      effectiveMicronsPerPixel: tile.effectiveMicronsPerPixel, level0X: tile.level0X, level0Y: tile.level0Y,
                      level0Size: slideMicronsPerPixel.map { Double(size) * tile.effectiveMicronsPerPixel / $0 },
                      tissueFraction: tile.tissueFraction, file: file, label: tile.label ?? "")
        }
    }

    /// The header line, with `extra` columns after the common ones.
    public static func header(extra: [String] = []) -> String { CSVField.line(columns + extra) }

    /// One row as a line, with `extra` fields after the common ones.
    public static func line(_ row: Row, extra: [String] = []) -> String {
        let common = [row.slide, String(row.column), String(row.row), String(format: "%g", row.scaleMicronsPerPixel),
                      String(format: "%.6g", row.effectiveMicronsPerPixel), String(row.level0X), String(row.level0Y),
                      row.level0Size.map { String(format: "%.2f", $0) } ?? "", String(format: "%.4f", row.tissueFraction),
                      row.file, row.label]
        return CSVField.line(common + extra)
    }
}
