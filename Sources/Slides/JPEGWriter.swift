import CTurboJPEG
import Foundation

/// Writes 8-bit RGB JPEG files through TurboJPEG (4:2:0 chroma, as PIL and most viewers default
/// to), written to a temporary file and renamed into place.
public enum JPEGWriter {
    /// - Parameter quality: 1…100 (libjpeg's scale).
    public static func write(_ image: RGBImage, to url: URL, quality: Int) throws {
        precondition((1...100).contains(quality), "JPEG quality is 1…100")
        if let problem = OutputFolder.problem(for: url) { throw SlideError(.invalidRequest, url.path, "cannot write the JPEG file: \(problem)") }
        guard let encoder = tjInitCompress() else { throw SlideError(.invalidRequest, url.path, "TurboJPEG could not start an encoder") }
        defer { tjDestroy(encoder) }
        var buffer: UnsafeMutablePointer<UInt8>? = nil
        var size: UInt = 0
        let status = image.pixels.withUnsafeBufferPointer { pixels in
            tjCompress2(encoder, pixels.baseAddress, Int32(image.width), Int32(image.width * 3), Int32(image.height), Int32(TJPF_RGB.rawValue),
                        &buffer, &size, Int32(TJSAMP_420.rawValue), Int32(quality), 0)
        }
        defer { if let buffer { tjFree(buffer) } }
        guard status == 0, let buffer else {
            throw SlideError(.invalidRequest, url.path, "TurboJPEG could not encode the image (\(String(cString: tjGetErrorStr2(encoder))))")
        }
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp")
        do {
            try Data(bytes: buffer, count: Int(size)).write(to: temporary)
            guard rename(temporary.path, url.path) == 0 else { throw SlideError(.invalidRequest, url.path, "cannot rename into place") }
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw SlideError(.invalidRequest, url.path, "cannot write the JPEG file: " + (OutputFolder.problem(for: url) ?? "\(String(cString: strerror(errno))); check the disk has room"))
        }
    }
}
