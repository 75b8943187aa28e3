import CTIFF
import Foundation

/// Writes named float32 planes (per-class probability maps) as a tiled, pyramidal OME-TIFF: one
/// image directory per plane in the main chain, each with its reduced levels as SubIFDs (the
/// OME-TIFF pyramid layout tifffile, Bio-Formats and so QuPath read), deflate-compressed. Levels
/// halve until the longer side fits in one tile, each value the mean of the finite values below it
/// (NaN, "no data", only where all four are NaN). The pixel size is in the OME-XML
/// (`PhysicalSizeX/Y` in µm) and in the resolution tags (pixels per centimetre), so the map lies
/// over the slide at its physical size. Written to a temporary file, then renamed.
public enum FloatPyramidWriter {
    public static func write(planes: [[Float]], names: [String], width: Int, height: Int, micronsPerPixel: Double?,
                             to url: URL, tileSize: Int = 256) throws {
        guard width > 0 && height > 0 else { throw SlideError(.invalidRequest, url.path, "cannot write an empty map") }
        guard !planes.isEmpty, planes.count == names.count, planes.allSatisfy({ $0.count == width * height }) else {
            throw SlideError(.invalidRequest, url.path, "each of the \(names.count) named planes must hold \(width)×\(height) values")
        }
        guard tileSize >= 16 && tileSize % 16 == 0 else { throw SlideError(.invalidRequest, url.path, "tile size must be a multiple of 16") }
        var sizes = [(width, height)]
        while max(sizes.last!.0, sizes.last!.1) > tileSize { sizes.append((max(1, sizes.last!.0 / 2), max(1, sizes.last!.1 / 2))) }
        let description = omeXML(names: names, width: width, height: height, micronsPerPixel: micronsPerPixel)
        try PyramidWriter.writeFile(url) { tif in
            for (index, plane) in planes.enumerated() {
                var level = plane
                for (depth, size) in sizes.enumerated() {
                    if depth > 0 { level = halve(level, width: sizes[depth - 1].0, height: sizes[depth - 1].1, into: size) }
                    try writeLevel(level, width: size.0, height: size.1, tif: tif, path: url.path, tileSize: tileSize,
                                   micronsPerPixel: micronsPerPixel.map { $0 * Double(width) / Double(size.0) },
                                   subIFDCount: depth == 0 ? sizes.count - 1 : 0, reduced: depth > 0,
                                   description: index == 0 && depth == 0 ? description : nil)
                }
            }
        }
    }

    /// The OME-XML of a C-plane float image (XYCZT, one plane per IFD from the first).
    static func omeXML(names: [String], width: Int, height: Int, micronsPerPixel: Double?) -> String {
        func escaped(_ text: String) -> String {
            text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
        }
        let physical = micronsPerPixel.map { String(format: " PhysicalSizeX=\"%.6f\" PhysicalSizeXUnit=\"µm\" PhysicalSizeY=\"%.6f\" PhysicalSizeYUnit=\"µm\"", $0, $0) } ?? ""
        let channels = names.enumerated().map { "<Channel ID=\"Channel:0:\($0.offset)\" Name=\"\(escaped($0.element))\" SamplesPerPixel=\"1\"/>" }.joined()
        return """
        <?xml version="1.0" encoding="UTF-8"?>\
        <OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06" Creator="ssmamba">\
        <Image ID="Image:0" Name="probabilities"><Pixels ID="Pixels:0" DimensionOrder="XYCZT" Type="float" \
        SizeX="\(width)" SizeY="\(height)" SizeC="\(names.count)" SizeZ="1" SizeT="1" BigEndian="false" Interleaved="false"\(physical)>\
        \(channels)<TiffData IFD="0" PlaneCount="\(names.count)"/></Pixels></Image></OME>
        """
    }

    /// The next level: each value the mean of the finite values of its 2×2 block, NaN if none.
    static func halve(_ values: [Float], width: Int, height: Int, into size: (Int, Int)) -> [Float] {
        var out = [Float](repeating: .nan, count: size.0 * size.1)
        for y in 0..<size.1 {
            for x in 0..<size.0 {
                var sum: Float = 0, count: Float = 0
                for dy in 0..<2 { for dx in 0..<2 {
                    let sx = 2 * x + dx, sy = 2 * y + dy
                    guard sx < width, sy < height else { continue }
                    let v = values[sy * width + sx]
                    if v.isFinite { sum += v; count += 1 }
                } }
                if count > 0 { out[y * size.0 + x] = sum / count }
            }
        }
        return out
    }

    private static func writeLevel(_ values: [Float], width: Int, height: Int, tif: OpaquePointer, path: String, tileSize: Int,
                                   micronsPerPixel: Double?, subIFDCount: Int, reduced: Bool, description: String?) throws {
        let set = PyramidWriter.set
        PyramidWriter.setLevelTags(tif, width: width, height: height, tileSize: tileSize, reduced: reduced,
                                   micronsPerPixel: micronsPerPixel, subIFDCount: subIFDCount)
        set(tif, TIFFTAG_BITSPERSAMPLE, [Int32(32)])
        set(tif, TIFFTAG_SAMPLESPERPIXEL, [Int32(1)])
        set(tif, TIFFTAG_SAMPLEFORMAT, [Int32(SAMPLEFORMAT_IEEEFP)])
        set(tif, TIFFTAG_PHOTOMETRIC, [Int32(PHOTOMETRIC_MINISBLACK)])
        set(tif, TIFFTAG_COMPRESSION, [Int32(COMPRESSION_ADOBE_DEFLATE)])
        if let description { description.withCString { text in set(tif, TIFFTAG_IMAGEDESCRIPTION, [text]) } }
        let across = (width + tileSize - 1) / tileSize, down = (height + tileSize - 1) / tileSize
        var tile = [Float](repeating: .nan, count: tileSize * tileSize)
        for row in 0..<down {
            for column in 0..<across {
                tile.withUnsafeMutableBufferPointer { $0.update(repeating: .nan) }  // edge tiles padded with "no data"
                let x0 = column * tileSize, y0 = row * tileSize
                let w = min(tileSize, width - x0), h = min(tileSize, height - y0)
                for y in 0..<h { for x in 0..<w { tile[y * tileSize + x] = values[(y0 + y) * width + x0 + x] } }
                let written = tile.withUnsafeMutableBytes {
                    TIFFWriteEncodedTile(tif, UInt32(row * across + column), $0.baseAddress, tmsize_t($0.count))
                }
                guard written >= 0 else { throw SlideError(.invalidRequest, path, "libtiff could not write tile \(row * across + column); is the disk full?") }
            }
        }
        guard TIFFWriteDirectory(tif) == 1 else { throw SlideError(.invalidRequest, path, "libtiff could not write an image directory; is the disk full?") }
    }
}
