import CTIFF
import Foundation

/// Writes an RGB image as a tiled pyramidal TIFF (for heatmaps and masks aligned with a slide):
/// levels halve until the longer side fits in one tile, each level area-averaged from the one
/// above; JPEG (YCbCr, libtiff converts from RGB) or deflate; µm/px as resolution tags in
/// pixels per centimetre; levels as an IFD chain (reduced-resolution subfile type, the layout
/// OpenSlide and tifffile read) or as SubIFDs of level 0. Written to a temporary file, then renamed.
public enum PyramidWriter {
    public enum Compression: Sendable, Equatable {
        case jpeg(quality: Int)
        case deflate
    }

    public enum Layout: Sendable { case chain, subIFDs }

    public static func write(_ image: RGBImage, to url: URL, micronsPerPixel: Double?, compression: Compression = .deflate,
                             tileSize: Int = 256, layout: Layout = .chain) throws {
        guard image.width > 0 && image.height > 0 else { throw SlideError(.invalidRequest, url.path, "cannot write an empty image") }
        guard tileSize >= 16 && tileSize % 16 == 0 else { throw SlideError(.invalidRequest, url.path, "tile size must be a multiple of 16") }
        var levels = [image]
        while max(levels.last!.width, levels.last!.height) > tileSize {
            let top = levels.last!
            let (w, h) = (max(1, top.width / 2), max(1, top.height / 2))
            levels.append(AreaResampler.resample(top, x0: 0, y0: 0, sourceWidth: Double(w * 2), sourceHeight: Double(h * 2), width: w, height: h))
        }
        try writeFile(url) { tif in
            for (index, level) in levels.enumerated() {
                let scale = Double(image.width) / Double(level.width)
                try writeLevel(width: level.width, height: level.height, tif: tif, path: url.path, tileSize: tileSize, compression: compression,
                               reduced: index > 0, micronsPerPixel: micronsPerPixel.map { $0 * scale },
                               subIFDCount: layout == .subIFDs && index == 0 ? levels.count - 1 : 0) { x0, y0, w, h, tile, stride in
                    level.pixels.withUnsafeBufferPointer { src in
                        for y in 0..<h { (tile + y * stride).update(from: src.baseAddress! + ((y0 + y) * level.width + x0) * 3, count: w * 3) }
                    }
                }
            }
        }
    }

    /// Writes a pyramid of `width` × `height` whose tiles come from `tile(level, x, y, w, h)` (the
    /// w × h pixels at (x, y) of level ℓ, which is ⌊width/2^ℓ⌋ × ⌊height/2^ℓ⌋): for images larger
    /// than memory, such as synthetic test slides or heatmaps assembled piecewise.
    public static func write(width: Int, height: Int, to url: URL, micronsPerPixel: Double?, compression: Compression = .deflate,
                             tileSize: Int = 256, tile: (_ level: Int, _ x: Int, _ y: Int, _ width: Int, _ height: Int) -> RGBImage) throws {
        guard width > 0 && height > 0 else { throw SlideError(.invalidRequest, url.path, "cannot write an empty image") }
        guard tileSize >= 16 && tileSize % 16 == 0 else { throw SlideError(.invalidRequest, url.path, "tile size must be a multiple of 16") }
        var sizes = [(width, height)]
        while max(sizes.last!.0, sizes.last!.1) > tileSize { sizes.append((max(1, sizes.last!.0 / 2), max(1, sizes.last!.1 / 2))) }
        try writeFile(url) { tif in
            for (index, size) in sizes.enumerated() {
                try writeLevel(width: size.0, height: size.1, tif: tif, path: url.path, tileSize: tileSize, compression: compression,
                               reduced: index > 0, micronsPerPixel: micronsPerPixel.map { $0 * Double(width) / Double(size.0) },
                               subIFDCount: 0) { x, y, w, h, destination, stride in
                    let part = tile(index, x, y, w, h)
                    guard part.width == w && part.height == h else {
                        throw SlideError(.invalidRequest, url.path, "the tile provider returned \(part.width)×\(part.height) pixels for a \(w)×\(h) tile at (\(x), \(y)) of level \(index)")
                    }
                    part.pixels.withUnsafeBufferPointer { src in
                        for row in 0..<h { (destination + row * stride).update(from: src.baseAddress! + row * w * 3, count: w * 3) }
                    }
                }
            }
        }
    }

    /// Writes through a temporary file renamed into place when complete.
    static func writeFile(_ url: URL, _ body: (OpaquePointer) throws -> Void) throws {
        if let problem = OutputFolder.problem(for: url) { throw SlideError(.invalidRequest, url.path, "cannot create the file: \(problem)") }
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(ProcessInfo.processInfo.processIdentifier)")
        guard let tif = TIFFOpen(temporary.path, "w") else {
            throw SlideError(.invalidRequest, url.path, "cannot create the file; check the folder is writable and the disk has room")
        }
        var closed = false
        defer { if !closed { TIFFClose(tif); try? FileManager.default.removeItem(at: temporary) } }
        try body(tif)
        TIFFClose(tif)
        closed = true
        guard rename(temporary.path, url.path) == 0 else {
            try? FileManager.default.removeItem(at: temporary)
            throw SlideError(.invalidRequest, url.path, "cannot move the written file into place")
        }
    }

    static func set(_ tif: OpaquePointer, _ tag: Int32, _ values: [CVarArg]) {
        _ = withVaList(values) { TIFFVSetField(tif, UInt32(tag), $0) }
    }

    /// The tags every level of every pyramid has: subfile type, size, contiguous tiles, software,
    /// µm/px as pixels per centimetre, and room for `subIFDCount` SubIFDs (written next).
    static func setLevelTags(_ tif: OpaquePointer, width: Int, height: Int, tileSize: Int, reduced: Bool, micronsPerPixel: Double?,
                             subIFDCount: Int) {
        set(tif, TIFFTAG_SUBFILETYPE, [UInt32(reduced ? FILETYPE_REDUCEDIMAGE : 0)])
        set(tif, TIFFTAG_IMAGEWIDTH, [UInt32(width)])
        set(tif, TIFFTAG_IMAGELENGTH, [UInt32(height)])
        set(tif, TIFFTAG_PLANARCONFIG, [Int32(PLANARCONFIG_CONTIG)])
        set(tif, TIFFTAG_TILEWIDTH, [UInt32(tileSize)])
        set(tif, TIFFTAG_TILELENGTH, [UInt32(tileSize)])
        // A C string that lives through the call (a Swift String passed as a C vararg is not one:
        // the tag read back as garbage).
        "ssmamba".withCString { software in set(tif, TIFFTAG_SOFTWARE, [software]) }
        if let micronsPerPixel {
            set(tif, TIFFTAG_RESOLUTIONUNIT, [Int32(RESUNIT_CENTIMETER)])
            set(tif, TIFFTAG_XRESOLUTION, [10_000 / micronsPerPixel])
            set(tif, TIFFTAG_YRESOLUTION, [10_000 / micronsPerPixel])
        }
        if subIFDCount > 0 {
            var placeholders = [UInt64](repeating: 0, count: subIFDCount)
            _ = placeholders.withUnsafeMutableBufferPointer { p in
                withVaList([Int32(subIFDCount), p.baseAddress!]) { TIFFVSetField(tif, UInt32(TIFFTAG_SUBIFD), $0) }
            }
        }
    }

    private static func writeLevel(width: Int, height: Int, tif: OpaquePointer, path: String, tileSize: Int, compression: Compression,
                                   reduced: Bool, micronsPerPixel: Double?, subIFDCount: Int,
                                   copy: (_ x: Int, _ y: Int, _ width: Int, _ height: Int, _ into: UnsafeMutablePointer<UInt8>, _ rowStride: Int) throws -> Void) throws {
        setLevelTags(tif, width: width, height: height, tileSize: tileSize, reduced: reduced, micronsPerPixel: micronsPerPixel,
                     subIFDCount: subIFDCount)
        set(tif, TIFFTAG_BITSPERSAMPLE, [Int32(8)])
        set(tif, TIFFTAG_SAMPLESPERPIXEL, [Int32(3)])
        switch compression {
        case .jpeg(let quality):
            set(tif, TIFFTAG_COMPRESSION, [Int32(COMPRESSION_JPEG)])
            set(tif, TIFFTAG_PHOTOMETRIC, [Int32(PHOTOMETRIC_YCBCR)])
            set(tif, TIFFTAG_JPEGQUALITY, [Int32(max(1, min(100, quality)))])
            set(tif, TIFFTAG_JPEGCOLORMODE, [Int32(JPEGCOLORMODE_RGB)])
        case .deflate:
            set(tif, TIFFTAG_COMPRESSION, [Int32(COMPRESSION_ADOBE_DEFLATE)])
            set(tif, TIFFTAG_PHOTOMETRIC, [Int32(PHOTOMETRIC_RGB)])
            set(tif, TIFFTAG_PREDICTOR, [Int32(PREDICTOR_HORIZONTAL)])
        }
        let across = (width + tileSize - 1) / tileSize, down = (height + tileSize - 1) / tileSize
        var tile = [UInt8](repeating: 0, count: tileSize * tileSize * 3)
        for row in 0..<down {
            for column in 0..<across {
                tile.withUnsafeMutableBufferPointer { $0.update(repeating: 255) }  // edge tiles padded with white
                let x0 = column * tileSize, y0 = row * tileSize
                let w = min(tileSize, width - x0), h = min(tileSize, height - y0)
                try tile.withUnsafeMutableBufferPointer { try copy(x0, y0, w, h, $0.baseAddress!, tileSize * 3) }
                let written = tile.withUnsafeMutableBytes {
                    TIFFWriteEncodedTile(tif, UInt32(row * across + column), $0.baseAddress, tmsize_t($0.count))
                }
                guard written >= 0 else { throw SlideError(.invalidRequest, path, "libtiff could not write tile \(row * across + column); is the disk full?") }
            }
        }
        guard TIFFWriteDirectory(tif) == 1 else { throw SlideError(.invalidRequest, path, "libtiff could not write an image directory; is the disk full?") }
    }
}
