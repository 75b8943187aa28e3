import Flow
import Foundation
import Slides
import TileCache

/// The slides of a `slides` source, in a deterministic order, with their labels.
public struct SlideListing: Sendable {
    public struct Entry: Sendable {
        public let path: String
        public var label: String?
        public var patient: String?
        public var time: Double?
        public var event: Bool?
    }
    public let entries: [Entry]

    /// Lists `path` (file, folder with `pattern`, or glob), sorted, keeps shard `i` of `n`, and
    /// joins the labels CSV by file name (or path).
    public init(parameters: ParameterValues) throws {
        let path = parameters.text("path")
        var paths: [String]
        var isFolder: ObjCBool = false
        if !PathPattern.isPattern(path), FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue {
            paths = PathPattern.matches((path as NSString).appendingPathComponent(parameters.text("pattern")))
        } else {
            paths = PathPattern.matches(path)
        }
        paths.sort()
        if paths.isEmpty { throw StageError("no slides found at '\(path)' (pattern \(parameters.text("pattern")))") }
        if let shard = parameters.optionalText("shard") {
            let (index, count) = try Self.parseShard(shard)
            paths = paths.enumerated().filter { $0.offset % count == index }.map(\.element)
        }
        var labels: [String: Entry] = [:]
        if let csv = parameters.optionalText("labels") {
            let table = try CSVTable(path: csv)
            try table.require(["slide"])
            for row in table.rows {
                let slide = row.values["slide"] ?? ""
                var time: Double?, event: Bool?
                if let text = row.values["time"], !text.isEmpty {
                    guard let value = Double(text), value >= 0 else { throw StageError("\(csv):\(row.line): time '\(text)' is not a non-negative number") }
                    time = value
                }
                if let text = row.values["event"], !text.isEmpty {
                    guard ["0", "1", "true", "false"].contains(text.lowercased()) else {
                        throw StageError("\(csv):\(row.line): event '\(text)' must be 0/1 or true/false")
                    }
                    event = text == "1" || text.lowercased() == "true"
                }
                labels[(slide as NSString).lastPathComponent] = Entry(path: slide, label: row.values["label"].flatMap { $0.isEmpty ? nil : $0 },
                                                                      patient: row.values["patient"], time: time, event: event)
            }
        }
        entries = paths.map { p in
            let known = labels[(p as NSString).lastPathComponent]
            return Entry(path: p, label: known?.label, patient: known?.patient, time: known?.time, event: known?.event)
        }
    }

    /// "i/n" with 0 ≤ i < n.
    public static func parseShard(_ text: String) throws -> (index: Int, count: Int) {
        let parts = text.split(separator: "/").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 2, let i = parts[0], let n = parts[1], n >= 1, i >= 0, i < n else {
            throw StageError("a shard is written i/n with 0 ≤ i < n (e.g. 0/4), got '\(text)'")
        }
        return (i, n)
    }
}

enum Sources {
    /// Opens each listed slide; a slide that cannot be opened is reported and skipped (or stops
    /// the run under `on_error: fail`).
    static func slides(_ listing: SlideListing, micronsPerPixelOverride: Double?) -> @Sendable (StageContext<SlideItem>) throws -> Void {
        { context in
            for entry in listing.entries {
                if context.isStopping { return }
                do {
                    var reader = try TIFFSlide(path: entry.path)
                    if reader.micronsPerPixel == nil, let micronsPerPixelOverride {
                        reader = try TIFFSlide(path: entry.path, micronsPerPixelOverride: micronsPerPixelOverride)
                    }
                    let item = SlideItem(path: entry.path, reader: reader, fingerprint: try Fingerprint.source(path: entry.path),
                                         label: entry.label, patient: entry.patient, time: entry.time, event: entry.event, mask: nil)
                    try context.emit(item)
                } catch let stopped as FlowStopped {
                    throw stopped
                } catch {
                    context.reportFailure(item: entry.path, reason: String(describing: error))
                }
            }
        }
    }

    /// Images in class sub-folders.
    static func roiFolder(_ parameters: ParameterValues) throws -> [ImageItem] {
        let root = parameters.text("path")
        let extensions = Set(parameters.text("extensions").lowercased().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        let manager = FileManager.default
        let classes = try manager.contentsOfDirectory(atPath: root).filter { name in
            var folder: ObjCBool = false
            return !name.hasPrefix(".") && manager.fileExists(atPath: (root as NSString).appendingPathComponent(name), isDirectory: &folder) && folder.boolValue
        }.sorted()
        if classes.isEmpty { throw StageError("\(root): no class sub-folders (an ROI dataset has one folder of images per class)") }
        var items: [ImageItem] = []
        for label in classes {
            let folder = (root as NSString).appendingPathComponent(label)
            for name in try manager.contentsOfDirectory(atPath: folder).sorted()
            where extensions.contains((name as NSString).pathExtension.lowercased()) {
                items.append(ImageItem(path: (folder as NSString).appendingPathComponent(name), label: label, split: nil))
            }
        }
        if items.isEmpty { throw StageError("\(root): the class folders hold no images with extensions \(extensions.sorted().joined(separator: ", "))") }
        return items
    }

    /// Images listed in a CSV (`path`, `label`, optional `split`), paths relative to the CSV.
    static func imageCSV(_ parameters: ParameterValues) throws -> [ImageItem] {
        let csv = parameters.text("path")
        let table = try CSVTable(path: csv)
        try table.require(["path", "label"])
        let base = (csv as NSString).deletingLastPathComponent
        return table.rows.map { row in
            let raw = row.values["path"] ?? ""
            let path = raw.hasPrefix("/") ? raw : (base as NSString).appendingPathComponent(raw)
            return ImageItem(path: path, label: row.values["label"], split: row.values["split"].flatMap { $0.isEmpty ? nil : $0 })
        }
    }
}
