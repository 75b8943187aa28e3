import Flow
import Foundation
import Slides
import TileCache
import Tiling

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
    init(_ parameters: SlidesKind.Parameters) throws {
        let path = parameters.path
        var paths: [String]
        var isFolder: ObjCBool = false
        if !PathPattern.isPattern(path), FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue {
            paths = PathPattern.matches((path as NSString).appendingPathComponent(parameters.pattern))
        } else {
            paths = PathPattern.matches(path)
        }
        paths.sort()
        if paths.isEmpty { throw StageError("no slides found at '\(path)' (pattern \(parameters.pattern))") }
        if let shard = parameters.shard {
            let (index, count) = try Self.parseShard(shard)
            paths = paths.enumerated().filter { $0.offset % count == index }.map(\.element)
        }
        var labels: [String: Entry] = [:]
        if let csv = parameters.labels {
            let table = try CSVTable(path: csv)
            try table.require(["slide"])
            for row in table.rows {
                let slide = row.values["slide"] ?? ""
                var time: Double?, event: Bool?
                if let text = row.values["time"], !text.isEmpty {
                    guard let value = Double(text), value >= 0 else { throw StageError(.invalidInput, "\(csv):\(row.line)", "time '\(text)' is not a non-negative number") }
                    time = value
                }
                if let text = row.values["event"], !text.isEmpty {
                    guard ["0", "1", "true", "false"].contains(text.lowercased()) else {
                        throw StageError(.invalidInput, "\(csv):\(row.line)", "event '\(text)' must be 0/1 or true/false")
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
    /// With `annotations`, each slide carries the polygons of `<annotations>/<slide name>.geojson`.
    static func slides(_ listing: SlideListing, micronsPerPixelOverride: Double?, annotations: URL? = nil) -> @Sendable (StageContext<SlideItem>) throws -> Void {
        { context in
            for entry in listing.entries {
                if context.isStopping { return }
                do {
                    // The override serves slides that record no usable µm/px (none, or an implausible value).
                    let reader = try Slide.open(entry.path, fallbackMicronsPerPixel: micronsPerPixelOverride)
                    var item = SlideItem(path: entry.path, reader: reader, fingerprint: try Fingerprint.source(paths: reader.files),
                                         label: entry.label, patient: entry.patient, time: entry.time, event: entry.event, mask: nil)
                    if let annotations {
                        let stem = ((entry.path as NSString).lastPathComponent as NSString).deletingPathExtension
                        let file = annotations.appendingPathComponent("\(stem).geojson")
                        guard FileManager.default.fileExists(atPath: file.path) else {
                            throw StageError(.invalidInput, entry.path, "no annotations at \(file.path) (the annotations folder holds <slide name>.geojson per slide); export them from QuPath, or remove the slide")
                        }
                        let (read, ignored) = try Annotation.read(geoJSON: file)
                        if ignored > 0 { context.count("\(context.stageName).annotations_without_area", ignored) }
                        item.annotations = read
                    }
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
    static func roiFolder(_ root: String, extensions list: String) throws -> [ImageItem] {
        let extensions = Set(list.lowercased().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        let manager = FileManager.default
        let classes = try manager.contentsOfDirectory(atPath: root).filter { name in
            var folder: ObjCBool = false
            return !name.hasPrefix(".") && manager.fileExists(atPath: (root as NSString).appendingPathComponent(name), isDirectory: &folder) && folder.boolValue
        }.sorted()
        if classes.isEmpty { throw StageError(.invalidInput, "\(root)", "no class sub-folders (an ROI dataset has one folder of images per class)") }
        var items: [ImageItem] = []
        for label in classes {
            let folder = (root as NSString).appendingPathComponent(label)
            for name in try manager.contentsOfDirectory(atPath: folder).sorted()
            where extensions.contains((name as NSString).pathExtension.lowercased()) {
                items.append(ImageItem(path: (folder as NSString).appendingPathComponent(name), label: label, split: nil))
            }
        }
        if items.isEmpty { throw StageError(.invalidInput, "\(root)", "the class folders hold no images with extensions \(extensions.sorted().joined(separator: ", "))") }
        return items
    }

    /// Images listed in a CSV (`path`, `label`, optional `split`), paths relative to the CSV.
    static func imageCSV(_ csv: String) throws -> [ImageItem] {
        let table = try CSVTable(path: csv)
        try table.require(["path", "label"])
        let base = (csv as NSString).deletingLastPathComponent
        // Split names as datasets write them; anything else is an error naming the row, never a silent drop.
        let splits = ["train": "train", "training": "train", "validation": "validation", "val": "validation", "valid": "validation",
                      "test": "test", "testing": "test"]
        return try table.rows.map { row in
            let raw = row.values["path"] ?? ""
            let path = raw.hasPrefix("/") ? raw : (base as NSString).appendingPathComponent(raw)
            var split: String?
            if let text = row.values["split"]?.trimmingCharacters(in: .whitespaces), !text.isEmpty {
                guard let known = splits[text.lowercased()] else {
                    throw StageError(.invalidInput, "\(csv):\(row.line)", "split '\(text)' is not train, validation or test (val, valid, training and testing are read as those; case is ignored)")
                }
                split = known
            }
            return ImageItem(path: path, label: row.values["label"], split: split)
        }
    }

    /// Every record of an existing cache (of one parameter fingerprint when `parameters` is
    /// given), as tiles without pixels whose `cacheEntry` names the record: the input of a training
    /// stage after `ssmamba cache warm`. A tile's `source` is the cache and the source file's
    /// identity, so the tiles of one slide or image stay together in source-level splits.
    static func cachedTiles(_ path: String, parameters: String?) throws -> @Sendable (StageContext<Tile>) throws -> Void {
        let store: TileStore
        do { store = try TileStore(path: path, readOnly: true) } catch {
            throw StageError(.invalidInput, "\(path)", "not a tile cache (\(error)); give the folder a `cache` stage or `ssmamba cache warm` wrote")
        }
        var only: UInt64?
        if let text = parameters {
            guard let value = UInt64(text, radix: 16) else {
                throw StageError("`parameters: \(text)` is not a hexadecimal fingerprint (`ssmamba cache stats \(path)` lists them)")
            }
            only = value
        }
        return { [only] context in
            var names: [UInt64: String] = [:]  // one string per source file, shared by its tiles
            var emitted = 0
            try store.environment.read(releasingPages: true) { txn in try txn.forEach { raw, _ in
                guard let key = TileKey(bytes: raw) else {
                    context.reportFailure(item: "\(path): key \(Array(raw.prefix(8)))…", reason: "not a tile key (\(raw.count) bytes); run `ssmamba cache verify \(path)`")
                    return
                }
                if let only, key.parameters != only { return }
                let source = names[key.source] ?? { let name = "\(path)#\(String(key.source, radix: 16))"; names[key.source] = name; return name }()
                var tile = Tile(source: source, column: 0, row: 0, scaleIndex: 0, level0X: Int(key.x), level0Y: Int(key.y),
                                requestedMicronsPerPixel: key.micronsPerPixel, effectiveMicronsPerPixel: key.micronsPerPixel,
                                tissueFraction: 1, image: RGBImage(width: 0, height: 0, pixels: []))
                tile.sourceIdentity = key.source
                tile.awaitingCache = true
                tile.cacheEntry = CacheEntry(store: store, key: key)
                try context.emit(tile)
                emitted += 1
            } }
            guard emitted > 0 else {
                throw StageError(.invalidInput, "\(path)", "the cache holds no tiles\(only.map { " with parameters \(String($0, radix: 16))" } ?? "")")
            }
        }
    }
}
