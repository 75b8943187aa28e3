import Foundation
import Randomness
import Slides
import Tensors
import TileCache

/// One augmented batch read from the tile cache.
public struct CacheBatch: Sendable {
    public let index: Int
    /// (members.count, 3, size, size); zero images when every member failed.
    public let images: Tensor
    /// Indices (into the reader's tiles) of the images, in order.
    public let members: [Int]
    /// Tiles that could not be read, with the reason.
    public let failures: [(tile: TrainingTile, reason: String)]
}

/// Reads tiles from the cache (one read transaction per store and batch), decodes them and
/// augments them into model input; tiles must have the model's input size (a tile of another size
/// is reported, not resampled: that would change the µm/px the model sees). The image in place j
/// of batch k draws its augmentation from `RandomGenerator(seed:).stream(k).stream(positionOffset + j)`,
/// so it depends neither on which thread made the batch nor on how a batch was shared out between
/// data-parallel processes (each reads its part with its place in the whole batch as offset).
///
/// A record that is absent or damaged is not hidden: the batch lists it in `failures` and holds
/// the others; the consumer reports it under its error policy.
public struct CacheBatchReader: Sendable {
    public let tiles: TrainingSet
    public let augmentation: Augmentation
    /// Side of the model's input; tiles must have it.
    public let size: Int
    public let seed: UInt64
    /// The place of this reader's first image in each whole batch (a data-parallel rank's share).
    public let positionOffset: Int

    public init(tiles: TrainingSet, augmentation: Augmentation, size: Int, seed: UInt64, positionOffset: Int = 0) {
        self.tiles = tiles
        self.augmentation = augmentation
        self.size = size
        self.seed = seed
        self.positionOffset = positionOffset
    }

    /// What to say of a tile of another size than the model's input: resampling it would change
    /// the µm/px the model sees without anyone having asked for it.
    static func sizeMismatch(width: Int, height: Int, size: Int) -> String {
        "the tile is \(width)×\(height) px and the model takes \(size)×\(size): set the tiles (or decode) stage's `size: \(size)`, or choose a model for \(width)-px tiles"
    }

    /// Fails unless the first tile has the model's input size (one clear error, not one per tile).
    public func checkTileSize() throws {
        guard !tiles.isEmpty else { return }
        let first = tiles[0]
        if case .found(let cached)? = try first.entry.store.read([first.entry.key]).first, cached.width != size || cached.height != size {
            throw StageError(.invalidInput, "\(first)", "\(Self.sizeMismatch(width: cached.width, height: cached.height, size: size))")
        }
    }

    /// Batch `k` made of `tiles[wanted]`.
    public func batch(_ k: Int, of wanted: [Int]) -> CacheBatch {
        var images = [RGBImage?](repeating: nil, count: wanted.count)
        var failures: [(tile: TrainingTile, reason: String)] = []
        let byStore = Dictionary(grouping: wanted.indices) { ObjectIdentifier(tiles.store(wanted[$0])) }
        for slots in byStore.values.map({ $0.sorted() }).sorted(by: { $0[0] < $1[0] }) {
            let store = tiles.store(wanted[slots[0]])
            do {
                let found = try store.read(slots.map { tiles.key(wanted[$0]) })
                for (slot, lookup) in zip(slots, found) {
                    switch lookup {
                    case .found(let cached) where cached.channels == 3 && cached.width == size && cached.height == size:
                        images[slot] = RGBImage(width: cached.width, height: cached.height, pixels: cached.pixels)
                    case .found(let cached) where cached.channels != 3:
                        failures.append((tiles[wanted[slot]], "the record has \(cached.channels) channels; the model needs RGB tiles"))
                    case .found(let cached):
                        failures.append((tiles[wanted[slot]], Self.sizeMismatch(width: cached.width, height: cached.height, size: size)))
                    case .missing:
                        failures.append((tiles[wanted[slot]], "absent from the cache (was it changed or cleaned during the run?); re-run the flow to write it again"))
                    case .corrupt(let reason):
                        failures.append((tiles[wanted[slot]], reason))
                    }
                }
            } catch {
                for slot in slots { failures.append((tiles[wanted[slot]], "the cache could not be read: \(error)")) }
            }
        }
        let members = wanted.indices.filter { images[$0] != nil }
        let batchGenerator = RandomGenerator(seed: seed).stream(UInt64(k))
        let tensor = augmentation.batch(members.map { images[$0]! }, size: size) { i in batchGenerator.stream(UInt64(positionOffset + members[i])) }
        return CacheBatch(index: k, images: tensor, members: members.map { wanted[$0] }, failures: failures)
    }
}

/// Model-ready batches streamed from the tile cache: `readers` threads make batches
/// (`CacheBatchReader`) ahead of the consumer, at most `capacity` made and not yet taken
/// (backpressure: readers wait while the model is slower); `next()` hands them over in order.
/// The consumer calls `stop()` when done (also when it leaves early): the readers keep the stream alive.
public final class CacheBatchStream: @unchecked Sendable {
    public let reader: CacheBatchReader
    public let count: Int
    private let plan: @Sendable (Int) -> [Int]
    private let capacity: Int
    private let condition = NSCondition()
    private var nextToMake = 0, nextToTake = 0
    private var ready: [Int: CacheBatch] = [:]
    private var stopped = false
    private var running = 0
    /// Seconds `next()` spent waiting for a batch (the model starved).
    public private(set) var waitedSeconds = 0.0

    /// - Parameters:
    ///   - first: the first batch (a resumed run continues from its position).
    ///   - count: the stream ends before batch `count`.
    ///   - plan: the indices into the reader's tiles of batch k.
    public init(_ reader: CacheBatchReader, first: Int = 0, count: Int, plan: @escaping @Sendable (Int) -> [Int], readers: Int, capacity: Int = 4) {
        self.reader = reader
        self.count = count
        (nextToMake, nextToTake) = (first, first)
        self.plan = plan
        self.capacity = max(1, capacity)
        running = max(1, readers)
        for _ in 0..<max(1, readers) {
            let thread = Thread { [self] in work() }
            thread.stackSize = 8 << 20
            thread.start()
        }
    }

    /// Every tile of the reader once, in order, `size` at a time (evaluation).
    public convenience init(_ reader: CacheBatchReader, inOrderBatchesOf size: Int, readers: Int) {
        let total = reader.tiles.count
        self.init(reader, count: (total + size - 1) / size, plan: { k in Array((k * size)..<min(total, (k + 1) * size)) }, readers: readers)
    }

    /// Batches the readers have started and batches the consumer has taken (started − taken ≤ capacity).
    public var progress: (started: Int, taken: Int) {
        condition.lock()
        defer { condition.unlock() }
        return (nextToMake, nextToTake)
    }

    /// The next batch in order; nil after the last one or once stopped.
    public func next() -> CacheBatch? {
        condition.lock()
        defer { condition.unlock() }
        guard nextToTake < count else { return nil }
        let start = DispatchTime.now().uptimeNanoseconds
        while ready[nextToTake] == nil && !stopped { condition.wait() }
        waitedSeconds += Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
        guard let batch = ready.removeValue(forKey: nextToTake) else { return nil }
        nextToTake += 1
        condition.broadcast()
        return batch
    }

    /// Stops the readers (they finish the batch in hand) and waits for them to leave.
    public func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        while running > 0 { condition.wait() }
        ready.removeAll()
        condition.unlock()
    }

    private func work() {
        while true {
            condition.lock()
            while !stopped && nextToMake < count && nextToMake >= nextToTake + capacity { condition.wait() }
            guard !stopped, nextToMake < count else {
                running -= 1
                condition.broadcast()
                condition.unlock()
                return
            }
            let k = nextToMake
            nextToMake += 1
            condition.unlock()
            let batch = reader.batch(k, of: plan(k))
            condition.lock()
            if !stopped { ready[k] = batch }
            condition.broadcast()
            condition.unlock()
        }
    }
}
