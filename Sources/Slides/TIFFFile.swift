import CTIFF
import CTurboJPEG
import Foundation

/// A libtiff handle with its error messages captured (not printed), and typed access to the tags
/// SSMamba reads. Not thread-safe: `TIFFSlide` serialises access with a lock.
///
/// libtiff's `TIFFGetField` is variadic and cannot be called from Swift: every read goes through
/// `TIFFVGetField` with a `va_list` made by `withVaList`.
final class TIFFFile {
    let path: String
    let handle: OpaquePointer
    private let messages: TIFFMessages
    /// The directory the handle is positioned on (managed by `TIFFSlide`).
    var selected: TIFFDirectory?

    init(path: String) throws {
        self.path = path
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw SlideError(.cannotOpen, path, "no readable file here; check the path and its permissions")
        }
        let messages = TIFFMessages()
        let options = TIFFOpenOptionsAlloc()
        defer { TIFFOpenOptionsFree(options) }
        let context = Unmanaged.passUnretained(messages).toOpaque()
        TIFFOpenOptionsSetErrorHandlerExtR(options, tiffMessageHandler, context)
        TIFFOpenOptionsSetWarningHandlerExtR(options, tiffWarningHandler, context)
        // Caps any single allocation libtiff makes from header values (a corrupt file must not
        // be able to ask for gigabytes).
        TIFFOpenOptionsSetMaxSingleMemAlloc(options, 512 << 20)
        guard let handle = TIFFOpenExt(path, "rm", options) else {
            throw SlideError(.cannotOpen, path, "not a readable TIFF file (\(messages.take() ?? "libtiff could not parse its header")); SSMamba reads TIFF/SVS slides, the vendor formats OpenSlide reads (NDPI, VMS, MIRAX, Philips, Leica, Ventana, …) and TIFF, PNG or JPEG images")
        }
        self.handle = handle
        self.messages = messages
    }

    /// A TurboJPEG decoder for this handle's JPEG tiles, made on first use.
    lazy var jpegDecoder: tjhandle? = tjInitDecompress()

    deinit {
        if let decoder = jpegDecoder { tjDestroy(decoder) }
        TIFFClose(handle)
    }

    /// The JPEGTables tag of the current directory (abbreviated tables shared by its tiles).
    func jpegTables() -> UnsafeRawBufferPointer? {
        var count: UInt32 = 0
        var pointer: UnsafeMutableRawPointer? = nil
        let ok = withUnsafeMutablePointer(to: &count) { c in withUnsafeMutablePointer(to: &pointer) { p in
            withVaList([c, p]) { TIFFVGetField(handle, UInt32(TIFFTAG_JPEGTABLES), $0) }
        } }
        guard ok == 1, let pointer, count >= 4 else { return nil }
        return UnsafeRawBufferPointer(start: pointer, count: Int(count))
    }

    /// The last libtiff error, cleared.
    func lastError() -> String { messages.take() ?? "libtiff reported no detail" }

    // MARK: directories

    var directoryCount: Int { Int(TIFFNumberOfDirectories(handle)) }

    func setDirectory(_ index: Int) throws {
        guard TIFFSetDirectory(handle, tdir_t(index)) == 1 else {
            throw SlideError(.corruptData, path, "cannot read image directory \(index) (\(lastError())); the file may be truncated")
        }
    }

    func setSubDirectory(offset: UInt64) throws {
        guard TIFFSetSubDirectory(handle, offset) == 1 else {
            throw SlideError(.corruptData, path, "cannot read the sub-image directory at offset \(offset) (\(lastError()))")
        }
    }

    // MARK: tags

    func uint32(_ tag: Int32) -> UInt32? {
        var value: UInt32 = 0
        let ok = withUnsafeMutablePointer(to: &value) { p in withVaList([p]) { TIFFVGetField(handle, UInt32(tag), $0) } }
        return ok == 1 ? value : nil
    }

    func uint16(_ tag: Int32) -> UInt16? {
        var value: UInt16 = 0
        let ok = withUnsafeMutablePointer(to: &value) { p in withVaList([p]) { TIFFVGetField(handle, UInt32(tag), $0) } }
        return ok == 1 ? value : nil
    }

    func float(_ tag: Int32) -> Float? {
        var value: Float = 0
        let ok = withUnsafeMutablePointer(to: &value) { p in withVaList([p]) { TIFFVGetField(handle, UInt32(tag), $0) } }
        return ok == 1 ? value : nil
    }

    func string(_ tag: Int32) -> String? {
        var value: UnsafeMutablePointer<CChar>? = nil
        let ok = withUnsafeMutablePointer(to: &value) { p in withVaList([p]) { TIFFVGetField(handle, UInt32(tag), $0) } }
        guard ok == 1, let value else { return nil }
        return String(cString: value)
    }

    /// Offsets of the SubIFDs of the current directory (pyramids stored as SubIFDs).
    func subDirectoryOffsets() -> [UInt64] {
        var count: UInt16 = 0
        var offsets: UnsafeMutablePointer<UInt64>? = nil
        let ok = withUnsafeMutablePointer(to: &count) { c in withUnsafeMutablePointer(to: &offsets) { o in
            withVaList([c, o]) { TIFFVGetField(handle, UInt32(TIFFTAG_SUBIFD), $0) }
        } }
        guard ok == 1, let offsets else { return [] }
        return (0..<Int(count)).map { offsets[$0] }
    }

    func setJPEGColourModeRGB() {
        _ = withVaList([Int32(JPEGCOLORMODE_RGB)]) { TIFFVSetField(handle, UInt32(TIFFTAG_JPEGCOLORMODE), $0) }
    }

    var isTiled: Bool { TIFFIsTiled(handle) != 0 }
}

/// Collects libtiff's messages for one handle (errors are reported with the file name).
final class TIFFMessages: @unchecked Sendable {
    private let lock = NSLock()
    private var last: String?

    func record(_ message: String) {
        lock.lock()
        last = message
        lock.unlock()
    }

    func take() -> String? {
        lock.lock()
        defer { last = nil; lock.unlock() }
        return last
    }
}

private func format(_ module: UnsafePointer<CChar>?, _ fmt: UnsafePointer<CChar>?, _ args: CVaListPointer?) -> String {
    var buffer = [CChar](repeating: 0, count: 512)
    if let fmt, let args { _ = vsnprintf(&buffer, buffer.count, fmt, args) }
    let text = String(cString: buffer)
    return module.map { "\(String(cString: $0)): \(text)" } ?? text
}

private let tiffMessageHandler: TIFFErrorHandlerExtR = { _, context, module, fmt, args in
    guard let context else { return 1 }
    Unmanaged<TIFFMessages>.fromOpaque(context).takeUnretainedValue().record(format(module, fmt, args))
    return 1
}

/// Warnings (unknown vendor tags and the like) are not errors: dropped.
private let tiffWarningHandler: TIFFErrorHandlerExtR = { _, _, _, _, _ in 1 }
