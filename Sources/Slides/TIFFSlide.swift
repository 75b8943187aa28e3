import CJPEGWindow
import CTurboJPEG
import CTIFF
import Foundation

/// The TIFF family (Aperio SVS, generic pyramidal TIFF, plain TIFF images) through libtiff, with
/// JPEG 2000 tiles decoded by OpenJPEG.
///
/// Pyramid levels are the tiled directories of level 0's aspect ratio, in the IFD chain or in
/// level 0's SubIFDs; other directories (Aperio's thumbnail, label, macro) are associated images.
/// Concurrent reads decode in parallel: libtiff handles are not thread-safe, so each read borrows
/// one from a small pool (one per core, opened on demand); decoded tiles go to a shared `DecodedTileCache`.
public final class TIFFSlide: SlideReader, @unchecked Sendable {
    typealias Directory = TIFFDirectory

    struct LevelStorage {
        let directory: Directory
        let level: SlideLevel
        let compression: UInt16
        let photometric: UInt16
        let samplesPerPixel: Int
        let bitsPerSample: Int
        let planar: UInt16
    }

    public let path: String
    public let vendor: String
    public let levels: [SlideLevel]
    public let micronsPerPixel: Double?
    public let objectivePower: Double?
    public let properties: [String: String]
    public let associatedImageNames: [String]
    public let background: (UInt8, UInt8, UInt8)

    private let pool: TIFFHandlePool
    private let storage: [LevelStorage]
    private let associated: [String: Directory]
    private let cache: DecodedTileCache

    /// Opens a slide. `micronsPerPixelOverride` replaces the file's µm/px (or supplies a missing
    /// one); `cache` may be shared between readers.
    public init(path: String, micronsPerPixelOverride: Double? = nil, cache: DecodedTileCache = DecodedTileCache(),
                background: (UInt8, UInt8, UInt8) = (255, 255, 255)) throws {
        self.path = path
        self.cache = cache
        self.background = background
        let file = try TIFFFile(path: path)
        var found: [LevelStorage] = []
        var extras: [(String, Directory)] = []
        var properties: [String: String] = [:]
        let count = file.directoryCount
        guard count > 0 else { throw SlideError(.corruptData, path, "the TIFF file has no images") }
        var aperio = false
        for index in 0..<count {
            try file.setDirectory(index)
            let description = file.string(TIFFTAG_IMAGEDESCRIPTION) ?? ""
            if index == 0 {
                aperio = description.hasPrefix("Aperio")
                properties = TIFFSlide.readProperties(file, description: description, aperio: aperio)
            }
            let entry = try TIFFSlide.describe(file, directory: .index(index), path: path)
            let lowered = description.lowercased()
            let named = lowered.contains("label") ? "label" : lowered.contains("macro") ? "macro" : nil
            if index == 0 {
                found.append(entry)
                for offset in file.subDirectoryOffsets() {
                    try file.setSubDirectory(offset: offset)
                    if let sub = try? TIFFSlide.describe(file, directory: .subIFD(offset), path: path), sub.level.tileWidth > 0 {
                        found.append(sub)
                    }
                    try file.setDirectory(0)
                }
                continue
            }
            let base = found[0].level
            let sameAspect = abs(Double(entry.level.width) / Double(base.width) - Double(entry.level.height) / Double(base.height)) < 0.02
            if named == nil && entry.level.tileWidth > 0 && sameAspect && entry.level.width < base.width {
                found.append(entry)
            } else {
                let name = named ?? (aperio && index == 1 ? "thumbnail" : "image-\(index)")
                extras.append((name, .index(index)))
            }
        }
        found.sort { $0.level.width > $1.level.width }
        let base = found[0].level
        storage = found.map { s in
            let downsample = (Double(base.width) / Double(s.level.width) + Double(base.height) / Double(s.level.height)) / 2
            return LevelStorage(directory: s.directory,
                                level: SlideLevel(width: s.level.width, height: s.level.height, downsample: downsample,
                                                  tileWidth: s.level.tileWidth, tileHeight: s.level.tileHeight,
                                                  compression: s.level.compression),
                                compression: s.compression, photometric: s.photometric, samplesPerPixel: s.samplesPerPixel,
                                bitsPerSample: s.bitsPerSample, planar: s.planar)
        }
        levels = storage.map(\.level)
        associated = Dictionary(extras, uniquingKeysWith: { first, _ in first })
        associatedImageNames = extras.map(\.0)
        vendor = aperio ? "aperio" : "generic-tiff"
        self.properties = properties
        micronsPerPixel = try resolvedMicronsPerPixel(override: micronsPerPixelOverride, recorded: TIFFSlide.micronsPerPixel(from: properties), path: path)
        objectivePower = properties["aperio.AppMag"].flatMap(Double.init)
        file.selected = nil
        pool = TIFFHandlePool(path: path, first: file)
    }

    // MARK: metadata

    static func describe(_ file: TIFFFile, directory: Directory, path: String) throws -> LevelStorage {
        guard let width = file.uint32(TIFFTAG_IMAGEWIDTH), let height = file.uint32(TIFFTAG_IMAGELENGTH), width > 0, height > 0 else {
            throw SlideError(.corruptData, path, "an image directory has no valid width and height")
        }
        let tiled = file.isTiled
        let compression = file.uint16(TIFFTAG_COMPRESSION) ?? 1
        if tiled {
            // The TIFF specification bounds nothing here; a corrupt header must not make a tile buffer of gigabytes.
            guard let tw = file.uint32(TIFFTAG_TILEWIDTH), let th = file.uint32(TIFFTAG_TILELENGTH),
                  (1...16_384).contains(tw), (1...16_384).contains(th) else {
                throw SlideError(.corruptData, path, "a tiled image has missing or implausible tile dimensions (the file is corrupt)")
            }
        }
        let level = SlideLevel(width: Int(width), height: Int(height), downsample: 1,
                               tileWidth: tiled ? Int(file.uint32(TIFFTAG_TILEWIDTH) ?? 0) : 0,
                               tileHeight: tiled ? Int(file.uint32(TIFFTAG_TILELENGTH) ?? 0) : 0,
                               compression: compressionName(compression))
        return LevelStorage(directory: directory, level: level, compression: compression,
                            photometric: file.uint16(TIFFTAG_PHOTOMETRIC) ?? 2,
                            samplesPerPixel: Int(file.uint16(TIFFTAG_SAMPLESPERPIXEL) ?? 1),
                            bitsPerSample: Int(file.uint16(TIFFTAG_BITSPERSAMPLE) ?? 1),
                            planar: file.uint16(TIFFTAG_PLANARCONFIG) ?? 1)
    }

    static func compressionName(_ code: UInt16) -> String {
        switch code {
        case 1: "none"
        case 5: "LZW"
        case 7: "JPEG"
        case 8, 32946: "deflate"
        case 33003: "JPEG 2000 (YCbCr)"
        case 33005: "JPEG 2000 (RGB)"
        case 34712: "JPEG 2000"
        case 50000: "zstd"
        default: "compression \(code)"
        }
    }

    /// `tiff.*` tags and, for Aperio, the `key = value` fields of the ImageDescription as `aperio.*`.
    static func readProperties(_ file: TIFFFile, description: String, aperio: Bool) -> [String: String] {
        var result: [String: String] = [:]
        result["tiff.ImageDescription"] = description
        if let software = file.string(TIFFTAG_SOFTWARE) { result["tiff.Software"] = software }
        if let x = file.float(TIFFTAG_XRESOLUTION) { result["tiff.XResolution"] = String(x) }
        if let y = file.float(TIFFTAG_YRESOLUTION) { result["tiff.YResolution"] = String(y) }
        if let unit = file.uint16(TIFFTAG_RESOLUTIONUNIT) {
            result["tiff.ResolutionUnit"] = unit == 2 ? "inch" : unit == 3 ? "centimeter" : "none"
        }
        if aperio {
            for field in description.split(separator: "|").dropFirst() {
                let parts = field.split(separator: "=", maxSplits: 1)
                guard parts.count == 2 else { continue }
                result["aperio." + parts[0].trimmingCharacters(in: .whitespaces)] = parts[1].trimmingCharacters(in: .whitespaces)
            }
        }
        return result
    }

    /// Aperio's MPP, else the resolution tags when their unit is a length.
    static func micronsPerPixel(from properties: [String: String]) -> Double? {
        if let mpp = properties["aperio.MPP"].flatMap(Double.init), mpp > 0 { return mpp }
        guard let x = properties["tiff.XResolution"].flatMap(Double.init), x > 0 else { return nil }
        switch properties["tiff.ResolutionUnit"] {
        case "centimeter": return 10_000 / x
        case "inch": return 25_400 / x
        default: return nil
        }
    }

    // MARK: reading

    public func readRegion(level0Origin origin: (x: Int, y: Int), size: (width: Int, height: Int), level: Int) throws -> RGBImage {
        try checkRequest(origin: origin, size: size)
        guard levels.indices.contains(level) else {
            throw SlideError(.invalidRequest, path, "level \(level) does not exist; the slide has levels 0…\(levels.count - 1)")
        }
        let info = storage[level]
        let downsample = info.level.downsample
        // The region in this level's pixels.
        let left = Int((Double(origin.x) / downsample).rounded(.down)), top = Int((Double(origin.y) / downsample).rounded(.down))
        guard left < info.level.width && top < info.level.height && left + size.width > 0 && top + size.height > 0 else {
            throw SlideError(.invalidRequest, path, "region at level-0 (\(origin.x), \(origin.y)) of \(size.width)×\(size.height) level-\(level) pixels lies entirely outside the \(levels[0].width)×\(levels[0].height) slide")
        }
        let (tileWidth, tileHeight) = info.level.tileWidth > 0 ? (info.level.tileWidth, info.level.tileHeight) : (info.level.width, info.level.height)
        let tilesAcross = (info.level.width + tileWidth - 1) / tileWidth
        // Exactly one stored tile: hand it out as it is (no copy; the storage is shared).
        if left >= 0 && top >= 0 && left % tileWidth == 0 && top % tileHeight == 0 && size == (tileWidth, tileHeight)
            && left + tileWidth <= info.level.width && top + tileHeight <= info.level.height {
            let (column, row) = (left / tileWidth, top / tileHeight)
            return try tile(level: level, index: row * tilesAcross + column, column: column, row: row, tileWidth: tileWidth, tileHeight: tileHeight)
        }
        // Background only where the region leaves the image; elsewhere every byte is overwritten.
        let inside = left >= 0 && top >= 0 && left + size.width <= info.level.width && top + size.height <= info.level.height
        var out = inside ? RGBImage(width: size.width, height: size.height, pixels: [UInt8](repeating: 0, count: size.width * size.height * 3))
                         : RGBImage(width: size.width, height: size.height, filling: background)
        let x0 = max(0, left), y0 = max(0, top)
        let x1 = min(info.level.width, left + size.width), y1 = min(info.level.height, top + size.height)
        // Without a tile cache nothing decoded is kept, so JPEG tiles are decoded only where the
        // region covers them (the rows and columns it needs; nothing below it).
        let windows = cache.capacityBytes == 0 && info.level.tileWidth > 0 && info.compression == 7 && (info.photometric == 6 || info.photometric == 2)
            && info.samplesPerPixel == 3 && info.bitsPerSample == 8 && info.planar == 1
        for tileRow in (y0 / tileHeight)...((y1 - 1) / tileHeight) {
            for tileColumn in (x0 / tileWidth)...((x1 - 1) / tileWidth) {
                let tx = tileColumn * tileWidth, ty = tileRow * tileHeight
                let cx0 = max(x0, tx), cx1 = min(x1, tx + tileWidth), cy0 = max(y0, ty), cy1 = min(y1, ty + tileHeight)
                guard cx1 > cx0 && cy1 > cy0 else { continue }
                let index = tileRow * tilesAcross + tileColumn
                if windows, try decodeJPEGWindow(info, index: index, window: (cx0 - tx, cy0 - ty, cx1 - cx0, cy1 - cy0),
                                                 into: &out, at: ((cx0 - left), (cy0 - top))) {
                    continue
                }
                let tile = try self.tile(level: level, index: index, column: tileColumn, row: tileRow, tileWidth: tileWidth, tileHeight: tileHeight)
                tile.pixels.withUnsafeBufferPointer { src in
                    out.pixels.withUnsafeMutableBufferPointer { dst in
                        for y in cy0..<cy1 {
                            let s = ((y - ty) * tile.width + (cx0 - tx)) * 3, d = ((y - top) * size.width + (cx0 - left)) * 3
                            (dst.baseAddress! + d).update(from: src.baseAddress! + s, count: (cx1 - cx0) * 3)
                        }
                    }
                }
            }
        }
        return out
    }

    public func associatedImage(_ name: String) throws -> RGBImage {
        guard let directory = associated[name] else {
            throw SlideError(.invalidRequest, path, "no associated image '\(name)'; this slide has: \(associatedImageNames.joined(separator: ", "))")
        }
        return try pool.withHandle { file in
            try select(directory, in: file)
            return try wholeImageRGBA(file)
        }
    }

    /// Decoded tile `index` of `level` (cached). Edge tiles keep their full stored size.
    private func tile(level: Int, index: Int, column: Int, row: Int, tileWidth: Int, tileHeight: Int) throws -> RGBImage {
        let key = DecodedTileCache.Key(slide: path, level: level, tile: index)
        if let hit = cache.get(key) { return hit }
        let info = storage[level]
        let image: RGBImage
        do {
            image = try pool.withHandle { file in
                try select(info.directory, in: file)
                return info.level.tileWidth > 0
                    ? try decodeTile(info, index: index, width: tileWidth, height: tileHeight, file: file)
                    : try wholeImageRGBA(file)
            }
        } catch let error as DecodeFailure {
            throw SlideError(.corruptData, path, "level \(level) tile \(index) (column \(column), row \(row)): \(error.description)")
        }
        cache.put(key, image)
        return image
    }

    private func select(_ directory: Directory, in file: TIFFFile) throws {
        guard file.selected != directory else { return }
        file.selected = nil
        switch directory {
        case .index(let i): try file.setDirectory(i)
        case .subIFD(let offset): try file.setSubDirectory(offset: offset)
        }
        // Reset by every directory change: YCbCr JPEG tiles decode straight to RGB.
        if file.uint16(TIFFTAG_PHOTOMETRIC) == 6 && file.uint16(TIFFTAG_COMPRESSION) == 7 { file.setJPEGColourModeRGB() }
        file.selected = directory
    }

    private func decodeTile(_ info: LevelStorage, index: Int, width: Int, height: Int, file: TIFFFile) throws -> RGBImage {
        let handle = file.handle
        guard index < Int(TIFFNumberOfTiles(handle)) else { throw DecodeFailure("tile index outside the tile table") }
        switch info.compression {
        case 33003, 33005, 34712:
            let size = Int(TIFFGetStrileByteCount(handle, UInt32(index)))
            guard size > 0 && size < 64 << 20 else { throw DecodeFailure("raw tile size \(size) is not plausible") }
            var raw = [UInt8](repeating: 0, count: size)
            let read = raw.withUnsafeMutableBytes { TIFFReadRawTile(handle, UInt32(index), $0.baseAddress, tmsize_t(size)) }
            guard read > 0 else { throw DecodeFailure("cannot read the raw tile (\(file.lastError()))") }
            let rgb = try JPEG2000Decoder.decode(Array(raw.prefix(Int(read))), width: width, height: height, ycbcr: info.compression == 33003)
            return RGBImage(width: width, height: height, pixels: rgb)
        default:
            let plain = info.bitsPerSample == 8 && info.planar == 1
                && ((info.photometric == 2 && info.samplesPerPixel >= 3) || (info.photometric == 6 && info.compression == 7)
                    || (info.photometric == 1 && info.samplesPerPixel == 1))
            if plain && info.compression == 7 && info.photometric == 6 && info.samplesPerPixel == 3,
               let image = decodeJPEGTile(index: index, width: width, height: height, file: file) {
                return image
            }
            if plain { return try decodeEncodedTile(info, index: index, width: width, height: height, file: file) }
            return try decodeRGBATile(index: index, width: width, height: height, file: file)
        }
    }

    /// A YCbCr JPEG tile straight through TurboJPEG: the raw tile spliced after the level's shared
    /// tables (the tables without their end marker, the tile without its start marker), decoded to
    /// RGB with the same (accurate, smooth-upsampling) settings libtiff's codec uses, without
    /// libtiff's per-tile codec set-up. nil sends the tile to libtiff's path instead.
    /// The JPEG datastream of tile `index`: the level's shared tables (JPEGTables, without their
    /// end marker), then the tile's data without its start marker; nil if it cannot be read.
    private func jpegStream(index: Int, file: TIFFFile) -> [UInt8]? {
        let size = Int(TIFFGetStrileByteCount(file.handle, UInt32(index)))
        guard size > 4 && size < 64 << 20 else { return nil }
        let tables = file.jpegTables()
        let prefix = tables.map { $0.count - 2 } ?? 0
        var stream = [UInt8](unsafeUninitializedCapacity: prefix + size) { storage, initialized in
            if let tables { UnsafeMutableRawBufferPointer(storage).copyMemory(from: UnsafeRawBufferPointer(rebasing: tables[0..<prefix])) }
            let read = TIFFReadRawTile(file.handle, UInt32(index), storage.baseAddress! + prefix, tmsize_t(size))
            initialized = read > 0 ? prefix + Int(read) : 0
        }
        guard stream.count > prefix + 2 else { return nil }
        if tables != nil {
            guard stream[prefix] == 0xFF && stream[prefix + 1] == 0xD8 else { return nil }
            stream.removeSubrange(prefix..<(prefix + 2))  // the tile's own start-of-image marker
        }
        return stream
    }

    /// Decodes `window` (x, y, width, height in the tile) of JPEG tile `index` into `out` at
    /// `origin`; the pixels equal a full decode's (`ssmamba_jpeg_decode_window`). False when the
    /// tile's stream cannot be read (the caller decodes it whole, which reports why).
    private func decodeJPEGWindow(_ info: LevelStorage, index: Int, window: (x: Int, y: Int, width: Int, height: Int),
                                  into out: inout RGBImage, at origin: (x: Int, y: Int)) throws -> Bool {
        let stream = try pool.withHandle { file -> [UInt8]? in
            try select(info.directory, in: file)
            guard index < Int(TIFFNumberOfTiles(file.handle)) else { return nil }
            return jpegStream(index: index, file: file)
        }
        guard let stream else { return false }
        var message = [CChar](repeating: 0, count: 256)
        let rowBytes = out.width * 3
        let status = stream.withUnsafeBufferPointer { src in
            out.pixels.withUnsafeMutableBufferPointer { dst in
                ssmamba_jpeg_decode_window(src.baseAddress, UInt(src.count), info.photometric == 2 ? 1 : 0, Int32(window.x), Int32(window.y), Int32(window.width), Int32(window.height),
                                           dst.baseAddress! + origin.y * rowBytes + origin.x * 3, Int32(rowBytes), &message, Int32(message.count))
            }
        }
        return status == 0
    }

    private func decodeJPEGTile(index: Int, width: Int, height: Int, file: TIFFFile) -> RGBImage? {
        guard let decoder = file.jpegDecoder, let stream = jpegStream(index: index, file: file) else { return nil }
        var status: Int32 = -1
        let pixels = [UInt8](unsafeUninitializedCapacity: width * height * 3) { storage, initialized in
            status = stream.withUnsafeBufferPointer { src in
                tjDecompress2(decoder, src.baseAddress, UInt(src.count), storage.baseAddress, Int32(width), Int32(width * 3), Int32(height),
                              Int32(TJPF_RGB.rawValue), 0)
            }
            initialized = status == 0 ? width * height * 3 : 0
        }
        return status == 0 ? RGBImage(width: width, height: height, pixels: pixels) : nil
    }

    /// libtiff decodes the tile (none, LZW, deflate, JPEG, zstd …) to interleaved samples.
    private func decodeEncodedTile(_ info: LevelStorage, index: Int, width: Int, height: Int, file: TIFFFile) throws -> RGBImage {
        let channels = info.photometric == 6 ? 3 : info.samplesPerPixel
        let bufferSize = Int(TIFFTileSize(file.handle))
        guard bufferSize >= width * height * channels else { throw DecodeFailure("tile buffer of \(bufferSize) bytes is too small") }
        // Not zero-filled first: the decoder writes every byte it reports, and only those are used.
        var read = 0
        var buffer = [UInt8](unsafeUninitializedCapacity: bufferSize) { storage, initialized in
            read = Int(TIFFReadEncodedTile(file.handle, UInt32(index), storage.baseAddress, tmsize_t(bufferSize)))
            initialized = max(0, read)
        }
        guard read >= width * height * channels else { throw DecodeFailure("cannot decode the tile (\(file.lastError()))") }
        if channels == 3 {
            if buffer.count > width * height * 3 { buffer.removeLast(buffer.count - width * height * 3) }
            return RGBImage(width: width, height: height, pixels: buffer)
        }
        var rgb = [UInt8](repeating: 0, count: width * height * 3)
        for p in 0..<(width * height) {
            for c in 0..<3 { rgb[3 * p + c] = channels == 1 ? buffer[p] : buffer[p * channels + c] }
        }
        return RGBImage(width: width, height: height, pixels: rgb)
    }

    /// Any other layout through libtiff's RGBA interface (rows come bottom-up).
    private func decodeRGBATile(index: Int, width: Int, height: Int, file: TIFFFile) throws -> RGBImage {
        var column: UInt32 = 0, row: UInt32 = 0
        // Tile coordinates from the index.
        let across = (Int(file.uint32(TIFFTAG_IMAGEWIDTH) ?? 0) + width - 1) / max(width, 1)
        column = UInt32((index % max(across, 1)) * width)
        row = UInt32((index / max(across, 1)) * height)
        var raster = [UInt32](repeating: 0, count: width * height)
        let ok = raster.withUnsafeMutableBufferPointer { TIFFReadRGBATile(file.handle, column, row, $0.baseAddress) }
        guard ok == 1 else { throw DecodeFailure("cannot decode the tile as RGBA (\(file.lastError()))") }
        var rgb = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                let v = raster[(height - 1 - y) * width + x]
                let o = (y * width + x) * 3
                rgb[o] = UInt8(v & 0xFF); rgb[o + 1] = UInt8((v >> 8) & 0xFF); rgb[o + 2] = UInt8((v >> 16) & 0xFF)
            }
        }
        return RGBImage(width: width, height: height, pixels: rgb)
    }

    /// The current directory as a whole (stripped images), through libtiff's RGBA interface.
    private func wholeImageRGBA(_ file: TIFFFile) throws -> RGBImage {
        guard let w = file.uint32(TIFFTAG_IMAGEWIDTH), let h = file.uint32(TIFFTAG_IMAGELENGTH),
              Int(w) * Int(h) <= 1 << 26 else {
            throw SlideError(.notSupported, path, "a stripped image this large cannot be read whole; convert the file to a tiled TIFF")
        }
        let (width, height) = (Int(w), Int(h))
        var raster = [UInt32](repeating: 0, count: width * height)
        let ok = raster.withUnsafeMutableBufferPointer {
            TIFFReadRGBAImageOriented(file.handle, w, h, $0.baseAddress, Int32(ORIENTATION_TOPLEFT), 0)
        }
        guard ok == 1 else { throw SlideError(.corruptData, path, "cannot decode the image (\(file.lastError()))") }
        var rgb = [UInt8](repeating: 0, count: width * height * 3)
        for p in 0..<(width * height) {
            let v = raster[p]
            rgb[3 * p] = UInt8(v & 0xFF); rgb[3 * p + 1] = UInt8((v >> 8) & 0xFF); rgb[3 * p + 2] = UInt8((v >> 16) & 0xFF)
        }
        return RGBImage(width: width, height: height, pixels: rgb)
    }
}

/// Which image directory of a TIFF file: one of the main chain, or a SubIFD at an offset.
enum TIFFDirectory: Equatable {
    case index(Int)
    case subIFD(UInt64)
}

/// libtiff handles of one file, lent to one reader at a time: up to one per core are opened on
/// demand; a read finding none idle and the limit reached waits for one to come back.
final class TIFFHandlePool: @unchecked Sendable {
    private let path: String
    private let condition = NSCondition()
    private var idle: [TIFFFile]
    private var opened: Int
    private let limit = max(1, ProcessInfo.processInfo.activeProcessorCount)

    init(path: String, first: TIFFFile) {
        self.path = path
        idle = [first]
        opened = 1
    }

    func withHandle<R>(_ body: (TIFFFile) throws -> R) throws -> R {
        let file = try borrow()
        defer { giveBack(file) }
        return try body(file)
    }

    private func borrow() throws -> TIFFFile {
        condition.lock()
        while idle.isEmpty && opened >= limit { condition.wait() }
        if let file = idle.popLast() {
            condition.unlock()
            return file
        }
        opened += 1
        condition.unlock()
        do {
            return try TIFFFile(path: path)
        } catch {
            condition.lock()
            opened -= 1
            condition.signal()
            condition.unlock()
            throw error
        }
    }

    private func giveBack(_ file: TIFFFile) {
        condition.lock()
        idle.append(file)
        condition.signal()
        condition.unlock()
    }
}
