import Flow
import Foundation
import TileCache
import Tiling

/// One tile a training stage trains on: where its pixels are cached, and what the data says of it.
public struct TrainingTile: Sendable, CustomStringConvertible {
    public let entry: CacheEntry
    public let label: String?
    /// train / validation / test, when the dataset assigns one.
    public let split: String?
    /// The slide or image file (source-level splits keep one file's tiles together).
    public let source: String
    /// The patient, when the data names one (patient-level splits keep a patient's slides together).
    public let patient: String?

    public init(entry: CacheEntry, label: String? = nil, split: String? = nil, source: String, patient: String? = nil) {
        self.entry = entry
        self.label = label
        self.split = split
        self.source = source
        self.patient = patient
    }

    public var description: String { "\((source as NSString).lastPathComponent) record \(entry.key) in \(entry.store.path)" }
}

/// The tiles of a training stage, column by column: a cache key (40 bytes) and five small codes
/// into tables of stores, labels, splits, sources and patients, 52 bytes a tile whatever its
/// size, so a data set of 100,000 tiles costs about 5 MB and no pixels are held.
public struct TrainingSet: Sendable {
    public private(set) var keys: [TileKey] = []
    private var storeCodes: [UInt8] = []
    private var labelCodes: [UInt16] = []
    private var splitCodes: [UInt8] = []
    private var sourceCodes: [UInt32] = []
    private var patientCodes: [UInt32] = []
    /// The tables the codes index (code 0 of labels and splits means none).
    private var stores: [TileStore] = []
    private var labels: [String?] = [nil], splits: [String?] = [nil], patients: [String?] = [nil], sources: [String] = []
    private var codes: [String: Int] = [:]

    public init() {}

    public init(_ tiles: [TrainingTile]) throws {
        for tile in tiles { try append(tile) }
    }

    public var count: Int { keys.count }
    public var isEmpty: Bool { keys.isEmpty }

    public subscript(index: Int) -> TrainingTile {
        TrainingTile(entry: CacheEntry(store: stores[Int(storeCodes[index])], key: keys[index]), label: label(index),
                     split: split(index), source: source(index), patient: patient(index))
    }

    public func label(_ index: Int) -> String? { labels[Int(labelCodes[index])] }
    public func split(_ index: Int) -> String? { splits[Int(splitCodes[index])] }
    public func source(_ index: Int) -> String { sources[Int(sourceCodes[index])] }
    public func patient(_ index: Int) -> String? { patients[Int(patientCodes[index])] }
    public func store(_ index: Int) -> TileStore { stores[Int(storeCodes[index])] }

    /// Adds a tile; throws past the tables' sizes (256 caches, 65,535 labels, 255 splits).
    public mutating func append(_ tile: TrainingTile) throws {
        let store: Int
        if let known = stores.firstIndex(where: { $0 === tile.entry.store }) { store = known } else {
            guard stores.count < 256 else { throw StageError("a training stage reads tiles from at most 256 caches") }
            stores.append(tile.entry.store)
            store = stores.count - 1
        }
        let label = try code(tile.label, in: \.labels, prefix: "l", limit: Int(UInt16.max), what: "labels")
        let split = try code(tile.split, in: \.splits, prefix: "t", limit: Int(UInt8.max), what: "split names")
        let source = try code(tile.source, in: \.sources, prefix: "s", limit: Int(UInt32.max), what: "source files")
        let patient = try code(tile.patient, in: \.patients, prefix: "p", limit: Int(UInt32.max), what: "patients")
        keys.append(tile.entry.key)
        storeCodes.append(UInt8(store))
        labelCodes.append(UInt16(label))
        splitCodes.append(UInt8(split))
        sourceCodes.append(UInt32(source))
        patientCodes.append(UInt32(patient))
    }

    private mutating func code(_ value: String?, in table: WritableKeyPath<TrainingSet, [String?]>, prefix: String, limit: Int, what: String) throws -> Int {
        guard let value else { return 0 }
        if let known = codes[prefix + value] { return known }
        guard self[keyPath: table].count <= limit else { throw StageError("a training stage takes at most \(limit) different \(what)") }
        self[keyPath: table].append(value)
        codes[prefix + value] = self[keyPath: table].count - 1
        return self[keyPath: table].count - 1
    }

    private mutating func code(_ value: String, in table: WritableKeyPath<TrainingSet, [String]>, prefix: String, limit: Int, what: String) throws -> Int {
        if let known = codes[prefix + value] { return known }
        guard self[keyPath: table].count < limit else { throw StageError("a training stage takes at most \(limit) different \(what)") }
        self[keyPath: table].append(value)
        codes[prefix + value] = self[keyPath: table].count - 1
        return self[keyPath: table].count - 1
    }

    /// The tiles at `indices`, in that order (the tables are shared).
    public func subset(_ indices: [Int]) -> TrainingSet {
        var out = self
        out.keys = indices.map { keys[$0] }
        out.storeCodes = indices.map { storeCodes[$0] }
        out.labelCodes = indices.map { labelCodes[$0] }
        out.splitCodes = indices.map { splitCodes[$0] }
        out.sourceCodes = indices.map { sourceCodes[$0] }
        out.patientCodes = indices.map { patientCodes[$0] }
        return out
    }

    /// Orders the tiles by cache and key: one order whatever order the stream delivered them in.
    /// In place (a permutation is applied cycle by cycle), so a large set is not held twice.
    public mutating func sort() {
        let paths = stores.map(\.path)
        func precedes(_ a: Int, _ b: Int) -> Bool {
            storeCodes[a] == storeCodes[b] ? keys[a] < keys[b] : paths[Int(storeCodes[a])] < paths[Int(storeCodes[b])]
        }
        guard keys.count > 1, !(1..<keys.count).allSatisfy({ !precedes($0, $0 - 1) }) else { return }
        let order = keys.indices.sorted(by: precedes)
        var placed = [Bool](repeating: false, count: keys.count)
        for start in keys.indices where !placed[start] {
            // Row i takes row order[i]: follow the cycle through `start`, holding its first row.
            let held = (keys[start], storeCodes[start], labelCodes[start], splitCodes[start], sourceCodes[start], patientCodes[start])
            var i = start
            while true {
                placed[i] = true
                let j = order[i]
                if j == start {
                    (keys[i], storeCodes[i], labelCodes[i], splitCodes[i], sourceCodes[i], patientCodes[i]) = held
                    break
                }
                (keys[i], storeCodes[i], labelCodes[i], splitCodes[i], sourceCodes[i], patientCodes[i])
                    = (keys[j], storeCodes[j], labelCodes[j], splitCodes[j], sourceCodes[j], patientCodes[j])
                i = j
            }
        }
    }
}

/// The tiles a training stage gathers from its stream before training: cache references, not
/// pixels (`TrainingSet`), so memory stays flat in the data set's size and no tile is left out.
final class TrainingTiles: @unchecked Sendable {
    private let lock = NSLock()
    private var tiles = TrainingSet()

    /// Takes `tile`'s cache reference; a tile that no cache stage has seen is an error.
    func add(_ tile: Tile, stage: String) throws {
        guard let entry = tile.cacheEntry else {
            throw StageError("\(tile): not from a cache ('\(stage)' streams its tiles from the tile cache; put a `cache` stage before it)")
        }
        let reference = TrainingTile(entry: entry, label: tile.label, split: tile.split, source: tile.source, patient: tile.patient)
        try lock.withLock { try tiles.append(reference) }
    }

    /// Every tile, ordered by cache key; the collector is emptied.
    func take() -> TrainingSet {
        lock.withLock {
            var all = TrainingSet()
            swap(&all, &tiles)
            all.sort()
            return all
        }
    }
}
