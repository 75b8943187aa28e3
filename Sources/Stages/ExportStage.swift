import Flow
import Foundation
import Slides
import Tiling

/// `export`: tiles as PNG (or JPEG) files plus tiles.csv.
final class ExportStage: Stage, @unchecked Sendable {
    typealias Output = Never
    let folder: URL
    /// JPEG quality, or nil for PNG.
    let jpegQuality: Int?
    private let lock = NSLock()
    private var rows: [String] = []

    init(folder: URL, jpegQuality: Int? = nil) throws {
        self.folder = folder
        self.jpegQuality = jpegQuality
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    func process(_ tile: Tile, _ context: StageContext<Never>) throws {
        guard tile.image.width > 0 else {
            throw StageError(.invalidInput, "\(tile)", "no pixels to export (a `cached_tiles` source reads none); export from a flow's `cache` step")
        }
        let stem = ((tile.source as NSString).lastPathComponent as NSString).deletingPathExtension
        let name = String(format: "%@_c%04d_r%04d_%gmpp.%@", stem, tile.column, tile.row, tile.requestedMicronsPerPixel, jpegQuality == nil ? "png" : "jpg")
        // A write that fails (full disk, folder gone read-only) would fail every later tile too.
        do {
            if let jpegQuality { try JPEGWriter.write(tile.image, to: folder.appendingPathComponent(name), quality: jpegQuality) } else {
                try PNGWriter.write(tile.image, to: folder.appendingPathComponent(name))
            }
        } catch { throw RunCannotContinue(error) }
        let row = TileTable.line(TileTable.Row(tile, size: tile.image.width, slideMicronsPerPixel: tile.grid?.micronsPerPixel, file: name))
        lock.withLock { rows.append(row) }
        context.count("export.tiles")
    }

    func finish(_ context: StageContext<Never>) throws {
        let body = lock.withLock { rows.sorted().joined() }
        try Data((TileTable.header() + body).utf8).write(to: folder.appendingPathComponent("tiles.csv"), options: .atomic)
    }
}
