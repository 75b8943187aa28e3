import CPNG
import CTurboJPEG
import Foundation

/// Single ROI images (TIFF, PNG, JPEG) decoded to 8-bit RGB, recognised by their first bytes
/// rather than their extension. Alpha is dropped; grey becomes RGB.
public enum ImageFile {
    /// The largest image decoded whole (a bigger one belongs in a tiled TIFF read by region).
    public static let maximumPixels = 1 << 28

    public static func read(_ path: String) throws -> RGBImage {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SlideError(.cannotOpen, path, "no readable file here; check the path and its permissions")
        }
        let bytes = [UInt8](data)
        if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47]) { return try readPNG(bytes, path: path) }
        if bytes.starts(with: [0xFF, 0xD8, 0xFF]) { return try readJPEG(bytes, path: path) }
        if bytes.starts(with: [0x49, 0x49, 0x2A, 0x00]) || bytes.starts(with: [0x4D, 0x4D, 0x00, 0x2A])
            || bytes.starts(with: [0x49, 0x49, 0x2B, 0x00]) || bytes.starts(with: [0x4D, 0x4D, 0x00, 0x2B]) {
            let slide = try TIFFSlide(path: path)
            let level = slide.levels[0]
            guard level.width * level.height <= maximumPixels else {
                throw SlideError(.notSupported, path, "\(level.width)×\(level.height) is too large to read as one image; read it as a slide, by region")
            }
            return try slide.readRegion(level0Origin: (0, 0), size: (level.width, level.height), level: 0)
        }
        throw SlideError(.notSupported, path, "not a TIFF, PNG or JPEG image (unrecognised first bytes); convert it to one of those")
    }

    static func readPNG(_ bytes: [UInt8], path: String) throws -> RGBImage {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        defer { png_image_free(&image) }
        let begun = bytes.withUnsafeBytes { png_image_begin_read_from_memory(&image, $0.baseAddress, $0.count) }
        guard begun != 0 else { throw SlideError(.corruptData, path, "not a readable PNG (\(pngMessage(image)))") }
        image.format = UInt32(PNG_FORMAT_RGB)
        let (width, height) = (Int(image.width), Int(image.height))
        guard width > 0, height > 0, width * height <= maximumPixels else {
            throw SlideError(.notSupported, path, "PNG of \(width)×\(height) is empty or too large to decode whole")
        }
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        let finished = bytes.withUnsafeBytes { _ in
            pixels.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, Int32(width * 3), nil) }
        }
        guard finished != 0 else { throw SlideError(.corruptData, path, "PNG data is corrupt (\(pngMessage(image)))") }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    static func pngMessage(_ image: png_image) -> String {
        var message = image.message
        return withUnsafeBytes(of: &message) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
    }

    static func readJPEG(_ bytes: [UInt8], path: String) throws -> RGBImage {
        guard let handle = tjInitDecompress() else { throw SlideError(.corruptData, path, "TurboJPEG could not start a decoder") }
        defer { tjDestroy(handle) }
        var width: Int32 = 0, height: Int32 = 0, subsampling: Int32 = 0, colourspace: Int32 = 0
        let header = bytes.withUnsafeBufferPointer {
            tjDecompressHeader3(handle, $0.baseAddress, UInt(bytes.count), &width, &height, &subsampling, &colourspace)
        }
        guard header == 0 else { throw SlideError(.corruptData, path, "not a readable JPEG (\(String(cString: tjGetErrorStr2(handle))))") }
        guard width > 0, height > 0, Int(width) * Int(height) <= maximumPixels else {
            throw SlideError(.notSupported, path, "JPEG of \(width)×\(height) is empty or too large to decode whole")
        }
        var pixels = [UInt8](repeating: 0, count: Int(width) * Int(height) * 3)
        let decoded = bytes.withUnsafeBufferPointer { src in
            pixels.withUnsafeMutableBufferPointer { dst in
                tjDecompress2(handle, src.baseAddress, UInt(bytes.count), dst.baseAddress, width, width * 3, height,
                              Int32(TJPF_RGB.rawValue), 0)
            }
        }
        guard decoded == 0 else { throw SlideError(.corruptData, path, "JPEG data is corrupt (\(String(cString: tjGetErrorStr2(handle))))") }
        return RGBImage(width: Int(width), height: Int(height), pixels: pixels)
    }
}
