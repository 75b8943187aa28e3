import CTIFF
import Foundation

/// A float32 pyramid as `FloatPyramidWriter` writes it (probability maps): one plane per channel in
/// the main IFD chain, the reduced levels of each as its SubIFDs.
public struct FloatPyramid: Sendable {
    public struct Level: Sendable {
        public let width: Int
        public let height: Int
        /// Row by row; NaN is "no data".
        public let values: [Float]

        public func value(x: Int, y: Int) -> Float { values[y * width + x] }
    }

    /// Channel names from the OME-XML (`Channel Name`), in plane order.
    public let names: [String]
    /// µm per level-0 pixel from the resolution tags (nil when absent).
    public let micronsPerPixel: Double?
    /// The OME-XML of the first plane.
    public let description: String
    /// `planes[c][ℓ]`: channel c at level ℓ (0 the full resolution).
    public let planes: [[Level]]
}

/// Reads a `FloatPyramid` back (maps written by SSMamba; a file of another layout is refused).
public enum FloatPyramidReader {
    public static func read(_ path: String) throws -> FloatPyramid {
        let file = try TIFFFile(path: path)
        var planes: [[FloatPyramid.Level]] = []
        var description = "", micronsPerPixel: Double?
        for index in 0..<file.directoryCount {
            try file.setDirectory(index)
            if index == 0 {
                description = file.string(TIFFTAG_IMAGEDESCRIPTION) ?? ""
                if file.uint16(TIFFTAG_RESOLUTIONUNIT) == UInt16(RESUNIT_CENTIMETER), let x = file.float(TIFFTAG_XRESOLUTION), x > 0 {
                    micronsPerPixel = 10_000 / Double(x)
                }
            }
            var levels = [try level(file, path: path)]
            for offset in file.subDirectoryOffsets() {
                try file.setSubDirectory(offset: offset)
                levels.append(try level(file, path: path))
                try file.setDirectory(index)
            }
            planes.append(levels)
        }
        return FloatPyramid(names: channelNames(description), micronsPerPixel: micronsPerPixel, description: description, planes: planes)
    }

    /// `Name="…"` of each `<Channel …/>` element, unescaped.
    static func channelNames(_ xml: String) -> [String] {
        xml.components(separatedBy: "<Channel ").dropFirst().compactMap { element in
            guard let start = element.range(of: "Name=\"") else { return nil }
            let rest = element[start.upperBound...]
            guard let end = rest.firstIndex(of: "\"") else { return nil }
            return String(rest[..<end]).replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&lt;", with: "<")
                .replacingOccurrences(of: "&gt;", with: ">").replacingOccurrences(of: "&amp;", with: "&")
        }
    }

    /// The current directory's float32 tiles assembled into one level.
    private static func level(_ file: TIFFFile, path: String) throws -> FloatPyramid.Level {
        guard file.uint16(TIFFTAG_BITSPERSAMPLE) == 32, file.uint16(TIFFTAG_SAMPLEFORMAT) == UInt16(SAMPLEFORMAT_IEEEFP),
              file.uint16(TIFFTAG_SAMPLESPERPIXEL) ?? 1 == 1, file.isTiled,
              let width = file.uint32(TIFFTAG_IMAGEWIDTH).map(Int.init), let height = file.uint32(TIFFTAG_IMAGELENGTH).map(Int.init),
              let tileWidth = file.uint32(TIFFTAG_TILEWIDTH).map(Int.init), let tileHeight = file.uint32(TIFFTAG_TILELENGTH).map(Int.init),
              width > 0, height > 0, width * height <= 1 << 28, (16...4096).contains(tileWidth), (16...4096).contains(tileHeight) else {
            throw SlideError(.notSupported, path, "not a float32 map as SSMamba writes them (tiled, one 32-bit float sample per pixel)")
        }
        var values = [Float](repeating: .nan, count: width * height)
        var tile = [Float](repeating: 0, count: tileWidth * tileHeight)
        let across = (width + tileWidth - 1) / tileWidth
        for index in 0..<(across * ((height + tileHeight - 1) / tileHeight)) {
            let read = tile.withUnsafeMutableBytes { TIFFReadEncodedTile(file.handle, UInt32(index), $0.baseAddress, tmsize_t($0.count)) }
            guard read >= 0 else { throw SlideError(.corruptData, path, "tile \(index) cannot be decoded (\(file.lastError()))") }
            let x0 = (index % across) * tileWidth, y0 = (index / across) * tileHeight
            for y in 0..<min(tileHeight, height - y0) {
                for x in 0..<min(tileWidth, width - x0) { values[(y0 + y) * width + x0 + x] = tile[y * tileWidth + x] }
            }
        }
        return FloatPyramid.Level(width: width, height: height, values: values)
    }
}
