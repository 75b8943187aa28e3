import COpenSlide
import Foundation

/// A slide read through OpenSlide: the formats the native TIFF reader does not handle (Hamamatsu
/// NDPI/VMS/VMU, MIRAX, Philips TIFF, Leica SCN, Ventana, Sakura, Trestle). `Slide.open` picks it
/// for them; the native reader stays the fast path for Aperio and generic tiled TIFF.
///
/// OpenSlide delivers premultiplied ARGB; pixels are composited over the slide's background colour
/// (`openslide.background-color`, else white), so areas outside the scanned regions are background
/// as with every reader. µm/px comes from `openslide.mpp-x`/`mpp-y` (their mean), else from the
/// TIFF resolution tags; the objective power from `openslide.objective-power`.
public final class OpenSlideSlide: SlideReader, @unchecked Sendable {
    public let path: String
    public let vendor: String
    public let levels: [SlideLevel]
    public let micronsPerPixel: Double?
    public let objectivePower: Double?
    public let associatedImageNames: [String]
    public let properties: [String: String]
    public let background: (UInt8, UInt8, UInt8)
    public let files: [String]

    /// The open handle. OpenSlide handles are thread-safe, but one error makes a handle fail every
    /// later call, so a failed read replaces it; readers hold a reference while they read.
    private var handle: Handle
    private let lock = NSLock()

    /// The vendor OpenSlide recognizes the file as ("hamamatsu", "mirax", "aperio", "generic-tiff",
    /// …), or nil when it does not recognize it. Reads only the file's header.
    public static func detectVendor(_ path: String) -> String? {
        openslide_detect_vendor(path).map { String(cString: $0) }
    }

    public init(path: String, micronsPerPixelOverride: Double? = nil) throws {
        self.path = path
        let handle = try Handle(path: path)
        self.handle = handle
        let osr = handle.osr
        var properties: [String: String] = [:]
        if let names = openslide_get_property_names(osr) {
            var i = 0
            while let name = names[i] {
                if let value = openslide_get_property_value(osr, name) { properties[String(cString: name)] = String(cString: value) }
                i += 1
            }
        }
        self.properties = properties
        vendor = properties["openslide.vendor"] ?? OpenSlideSlide.detectVendor(path) ?? "openslide"
        files = SlideFiles.of(path: path, vendor: vendor)
        let count = Int(openslide_get_level_count(osr))
        guard count > 0 else { throw SlideError(.corruptData, path, "OpenSlide found no image levels in the file (\(handle.error ?? "no error given")); check that the slide's files are complete") }
        levels = (0..<count).map { i in
            var width: Int64 = 0, height: Int64 = 0
            openslide_get_level_dimensions(osr, Int32(i), &width, &height)
            let tileWidth = properties["openslide.level[\(i)].tile-width"].flatMap(Int.init) ?? 0
            let tileHeight = properties["openslide.level[\(i)].tile-height"].flatMap(Int.init) ?? 0
            return SlideLevel(width: Int(width), height: Int(height), downsample: openslide_get_level_downsample(osr, Int32(i)),
                              tileWidth: tileWidth, tileHeight: tileHeight, compression: "\(properties["openslide.vendor"] ?? "vendor") (OpenSlide)")
        }
        guard levels[0].width > 0 && levels[0].height > 0 else {
            throw SlideError(.corruptData, path, "OpenSlide reports an empty level 0 (\(handle.error ?? "no error given")); check that the slide's files are complete")
        }
        var associated: [String] = []
        if let names = openslide_get_associated_image_names(osr) {
            var i = 0
            while let name = names[i] { associated.append(String(cString: name)); i += 1 }
        }
        associatedImageNames = associated
        background = OpenSlideSlide.colour(hex: properties["openslide.background-color"]) ?? (255, 255, 255)

        let axes = [properties["openslide.mpp-x"], properties["openslide.mpp-y"]].compactMap { $0.flatMap(Double.init) }.filter { $0 > 0 }
        // OpenSlide 3.4 gives no openslide.mpp for generic TIFF; its resolution tags do (as OpenSlide 4 reads them).
        let recorded = axes.isEmpty ? TIFFSlide.micronsPerPixel(from: properties) : axes.reduce(0, +) / Double(axes.count)
        micronsPerPixel = try resolvedMicronsPerPixel(override: micronsPerPixelOverride, recorded: recorded, path: path)
        objectivePower = properties["openslide.objective-power"].flatMap(Double.init)
    }

    public func readRegion(level0Origin origin: (x: Int, y: Int), size: (width: Int, height: Int), level: Int) throws -> RGBImage {
        try checkRequest(origin: origin, size: size)
        guard levels.indices.contains(level) else {
            throw SlideError(.invalidRequest, path, "level \(level) does not exist; the slide has levels 0…\(levels.count - 1)")
        }
        var argb = [UInt32](repeating: 0, count: size.width * size.height)
        try read("\(size.width)×\(size.height) pixels at (\(origin.x), \(origin.y)) of level \(level)") { osr in
            argb.withUnsafeMutableBufferPointer {
                openslide_read_region(osr, $0.baseAddress, Int64(origin.x), Int64(origin.y), Int32(level), Int64(size.width), Int64(size.height))
            }
        }
        return composite(argb, width: size.width, height: size.height)
    }

    public func associatedImage(_ name: String) throws -> RGBImage {
        guard associatedImageNames.contains(name) else {
            throw SlideError(.invalidRequest, path, "no associated image '\(name)'; the slide has \(associatedImageNames.isEmpty ? "none" : associatedImageNames.joined(separator: ", "))")
        }
        var width: Int64 = 0, height: Int64 = 0
        try read("the size of the associated image '\(name)'") { openslide_get_associated_image_dimensions($0, name, &width, &height) }
        guard width > 0, height > 0, width * height <= 1 << 28 else {
            throw SlideError(.corruptData, path, "the associated image '\(name)' has implausible dimensions \(width)×\(height)")
        }
        var argb = [UInt32](repeating: 0, count: Int(width * height))
        try read("the associated image '\(name)'") { osr in argb.withUnsafeMutableBufferPointer { openslide_read_associated_image(osr, name, $0.baseAddress) } }
        return composite(argb, width: Int(width), height: Int(height))
    }

    /// Runs one OpenSlide call on the current handle. A handle that has failed answers nothing
    /// more, so after an error the next call gets a fresh one; the error names `what` was read.
    private func read(_ what: String, _ call: (OpaquePointer) -> Void) throws {
        let current = lock.withLock { handle }
        call(current.osr)
        guard let error = current.error else { return }
        lock.withLock { if handle === current, let fresh = try? Handle(path: path) { handle = fresh } }
        throw SlideError(.corruptData, path, "OpenSlide could not read \(what): \(error); check that the slide's files are complete and readable")
    }

    /// Premultiplied ARGB over the background: c + (1 − α)·background, per channel.
    private func composite(_ argb: [UInt32], width: Int, height: Int) -> RGBImage {
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        let (br, bg, bb) = (UInt32(background.0), UInt32(background.1), UInt32(background.2))
        pixels.withUnsafeMutableBufferPointer { out in
            for (i, p) in argb.enumerated() {
                let a = p >> 24, r = (p >> 16) & 0xFF, g = (p >> 8) & 0xFF, b = p & 0xFF
                if a == 255 {
                    out[3 * i] = UInt8(r); out[3 * i + 1] = UInt8(g); out[3 * i + 2] = UInt8(b)
                } else {
                    let rest = 255 - a
                    out[3 * i] = UInt8(min(255, r + (rest * br + 127) / 255))
                    out[3 * i + 1] = UInt8(min(255, g + (rest * bg + 127) / 255))
                    out[3 * i + 2] = UInt8(min(255, b + (rest * bb + 127) / 255))
                }
            }
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    /// "RRGGBB" as OpenSlide writes `openslide.background-color`.
    static func colour(hex: String?) -> (UInt8, UInt8, UInt8)? {
        guard let hex, hex.count == 6, let value = UInt32(hex, radix: 16) else { return nil }
        return (UInt8(value >> 16), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF))
    }

    /// One `openslide_t`, closed when the last reader lets go of it.
    private final class Handle: @unchecked Sendable {
        let osr: OpaquePointer

        init(path: String) throws {
            guard FileManager.default.isReadableFile(atPath: path) else {
                throw SlideError(.cannotOpen, path, "no readable file at this path; check the path and its permissions")
            }
            guard let osr = openslide_open(path) else {
                throw SlideError(.notSupported, path, "OpenSlide does not recognize this file's format; SSMamba reads Aperio SVS, tiled TIFF, Hamamatsu NDPI/VMS/VMU, MIRAX, Philips TIFF, Leica SCN, Ventana, Sakura and Trestle slides, and PNG/JPEG/TIFF images")
            }
            self.osr = osr
            if let error {  // deinit closes the handle
                throw SlideError(.corruptData, path, "OpenSlide cannot open the slide: \(error); check that every file of the slide is present (MIRAX and VMS slides are a folder of files beside the one named)")
            }
        }

        var error: String? { openslide_get_error(osr).map { String(cString: $0) } }

        deinit { openslide_close(osr) }
    }
}
