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

/// The tiles of a training stage, column by column in chunks (`ChunkedArray`): each tile's
/// level-0 x and y (32 bits each) and small codes into tables of source identities, parameter
/// fingerprints, µm/px, caches, labels, splits, source files and patients: 27 bytes a tile
/// whatever its size, so a data set of 100,000 tiles costs under 3 MB and no pixels are held.
public struct TrainingSet: Sendable {
    /// One tile's entries in the columns.
    struct Row {
        var x: Int32, y: Int32
        var identity: UInt32, parameters: UInt8, scale: UInt16
        var store: UInt8, label: UInt16, split: UInt8, source: UInt32, patient: UInt32
    }

    private var xs = ChunkedArray<Int32>(), ys = ChunkedArray<Int32>()
    private var identityCodes = ChunkedArray<UInt32>(), parameterCodes = ChunkedArray<UInt8>(), scaleCodes = ChunkedArray<UInt16>()
    private var storeCodes = ChunkedArray<UInt8>(), labelCodes = ChunkedArray<UInt16>(), splitCodes = ChunkedArray<UInt8>()
    private var sourceCodes = ChunkedArray<UInt32>(), patientCodes = ChunkedArray<UInt32>()
    /// The tables the codes index (code 0 of labels, splits and patients means none).
    private var identities: [UInt64] = [], parameterFingerprints: [UInt64] = [], scales: [Double] = []
    private var stores: [TileStore] = []
    private var labels: [String?] = [nil], splits: [String?] = [nil], patients: [String?] = [nil], sources: [String] = []
    private var codes: [String: Int] = [:]

    public init() {}

    public init(_ tiles: [TrainingTile]) throws {
        for tile in tiles { try append(tile) }
    }

    public var count: Int { xs.count }
    public var isEmpty: Bool { xs.isEmpty }

    public subscript(index: Int) -> TrainingTile {
        TrainingTile(entry: CacheEntry(store: store(index), key: key(index)), label: label(index),
                     split: split(index), source: source(index), patient: patient(index))
    }

    /// The cache key of tile `index`.
    public func key(_ index: Int) -> TileKey {
        TileKey(source: identities[Int(identityCodes[index])], parameters: parameterFingerprints[Int(parameterCodes[index])],
                x: Int(xs[index]), y: Int(ys[index]), micronsPerPixel: scales[Int(scaleCodes[index])])
    }

    /// Every cache key, in order.
    public var keys: LazyMapCollection<Range<Int>, TileKey> { (0..<count).lazy.map { key($0) } }

    public func label(_ index: Int) -> String? { labels[Int(labelCodes[index])] }
    public func split(_ index: Int) -> String? { splits[Int(splitCodes[index])] }
    public func source(_ index: Int) -> String { sources[Int(sourceCodes[index])] }
    public func patient(_ index: Int) -> String? { patients[Int(patientCodes[index])] }
    public func store(_ index: Int) -> TileStore { stores[Int(storeCodes[index])] }

    /// Adds a tile; throws past the tables' sizes (256 caches or parameter sets, 65,535 labels or
    /// scales, 255 splits) or for a level-0 position beyond ±2³¹.
    public mutating func append(_ tile: TrainingTile) throws {
        let key = tile.entry.key
        guard let x = Int32(exactly: key.x), let y = Int32(exactly: key.y) else {
            throw StageError(.invalidInput, "\(tile)", "level-0 position (\(key.x), \(key.y)) is beyond ±2³¹ pixels")
        }
        let store: Int
        if let known = stores.firstIndex(where: { $0 === tile.entry.store }) { store = known } else {
            guard stores.count < 256 else { throw StageError("a training stage reads tiles from at most 256 caches") }
            stores.append(tile.entry.store)
            store = stores.count - 1
        }
        let row = Row(x: x, y: y,
                      identity: UInt32(try code(key.source, in: \.identities, prefix: "i", limit: Int(UInt32.max), what: "source files")),
                      parameters: UInt8(try code(key.parameters, in: \.parameterFingerprints, prefix: "f", limit: 256, what: "parameter sets")),
                      scale: UInt16(try code(key.micronsPerPixel, in: \.scales, prefix: "m", limit: Int(UInt16.max) + 1, what: "µm/px")),
                      store: UInt8(store),
                      label: UInt16(try code(tile.label, in: \.labels, prefix: "l", limit: Int(UInt16.max), what: "labels")),
                      split: UInt8(try code(tile.split, in: \.splits, prefix: "t", limit: Int(UInt8.max), what: "split names")),
                      source: UInt32(try code(tile.source, in: \.sources, prefix: "s", limit: Int(UInt32.max), what: "source files")),
                      patient: UInt32(try code(tile.patient, in: \.patients, prefix: "p", limit: Int(UInt32.max), what: "patients")))
        append(row)
    }

    private mutating func append(_ row: Row) {
        xs.append(row.x); ys.append(row.y)
        identityCodes.append(row.identity); parameterCodes.append(row.parameters); scaleCodes.append(row.scale)
        storeCodes.append(row.store); labelCodes.append(row.label); splitCodes.append(row.split)
        sourceCodes.append(row.source); patientCodes.append(row.patient)
    }

    private func row(_ i: Int) -> Row {
        Row(x: xs[i], y: ys[i], identity: identityCodes[i], parameters: parameterCodes[i], scale: scaleCodes[i],
            store: storeCodes[i], label: labelCodes[i], split: splitCodes[i], source: sourceCodes[i], patient: patientCodes[i])
    }

    private mutating func set(_ i: Int, _ row: Row) {
        (xs[i], ys[i]) = (row.x, row.y)
        (identityCodes[i], parameterCodes[i], scaleCodes[i]) = (row.identity, row.parameters, row.scale)
        (storeCodes[i], labelCodes[i], splitCodes[i], sourceCodes[i], patientCodes[i]) = (row.store, row.label, row.split, row.source, row.patient)
    }

    /// The code of `value` in `table`, added when new (an optional's nil is code 0).
    private mutating func code<T: Hashable>(_ value: T, in table: WritableKeyPath<TrainingSet, [T]>, prefix: String, limit: Int, what: String) throws -> Int {
        let name = prefix + "\(value)"
        if let known = codes[name] { return known }
        guard self[keyPath: table].count < limit else { throw StageError("a training stage takes at most \(limit) different \(what)") }
        self[keyPath: table].append(value)
        codes[name] = self[keyPath: table].count - 1
        return self[keyPath: table].count - 1
    }

    private mutating func code(_ value: String?, in table: WritableKeyPath<TrainingSet, [String?]>, prefix: String, limit: Int, what: String) throws -> Int {
        guard let value else { return 0 }
        let name = prefix + value
        if let known = codes[name] { return known }
        guard self[keyPath: table].count <= limit else { throw StageError("a training stage takes at most \(limit) different \(what)") }
        self[keyPath: table].append(value)
        codes[name] = self[keyPath: table].count - 1
        return self[keyPath: table].count - 1
    }

    /// The tiles at `indices`, in that order (the tables are shared).
    public func subset(_ indices: [Int]) -> TrainingSet {
        var out = self
        (out.xs, out.ys) = (ChunkedArray(), ChunkedArray())
        (out.identityCodes, out.parameterCodes, out.scaleCodes) = (ChunkedArray(), ChunkedArray(), ChunkedArray())
        (out.storeCodes, out.labelCodes, out.splitCodes, out.sourceCodes, out.patientCodes) = (ChunkedArray(), ChunkedArray(), ChunkedArray(), ChunkedArray(), ChunkedArray())
        for i in indices { out.append(row(i)) }
        return out
    }

    /// Orders the tiles by cache and key: one order whatever order the stream delivered them in.
    /// In place (a permutation is applied cycle by cycle), so a large set is not held twice.
    public mutating func sort() {
        let paths = stores.map(\.path)
        func precedes(_ a: Int, _ b: Int) -> Bool {
            storeCodes[a] == storeCodes[b] ? key(a) < key(b) : paths[Int(storeCodes[a])] < paths[Int(storeCodes[b])]
        }
        guard count > 1, !(1..<count).allSatisfy({ !precedes($0, $0 - 1) }) else { return }
        let order = (0..<count).sorted(by: precedes)
        var placed = [Bool](repeating: false, count: count)
        for start in 0..<count where !placed[start] {
            // Row i takes row order[i]: follow the cycle through `start`, holding its first row.
            let held = row(start)
            var i = start
            while true {
                placed[i] = true
                let j = order[i]
                if j == start {
                    set(i, held)
                    break
                }
                set(i, row(j))
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
            throw StageError(.invalidInput, "\(tile)", "not from a cache ('\(stage)' streams its tiles from the tile cache; put a `cache` stage before it)")
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
