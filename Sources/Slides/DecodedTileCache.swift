import Foundation

/// A bounded cache of decoded tiles, least recently used first out, by bytes. Shared by every
/// reader of a slide; safe from several tasks at once.
public final class DecodedTileCache: @unchecked Sendable {
    public struct Key: Hashable, Sendable {
        let slide: String
        let level: Int
        let tile: Int
    }

    public let capacityBytes: Int
    private let lock = NSLock()
    private var entries: [Key: (image: RGBImage, stamp: UInt64)] = [:]
    private var clock: UInt64 = 0
    private var bytes = 0
    public private(set) var hits = 0
    public private(set) var misses = 0

    public init(capacityBytes: Int = 256 << 20) { self.capacityBytes = capacityBytes }

    func get(_ key: Key) -> RGBImage? {
        lock.lock()
        defer { lock.unlock() }
        guard let entry = entries[key] else { misses += 1; return nil }
        hits += 1
        clock += 1
        entries[key] = (entry.image, clock)
        return entry.image
    }

    func put(_ key: Key, _ image: RGBImage) {
        lock.lock()
        defer { lock.unlock() }
        guard image.pixels.count <= capacityBytes else { return }
        clock += 1
        if let old = entries[key] { bytes -= old.image.pixels.count }
        entries[key] = (image, clock)
        bytes += image.pixels.count
        while bytes > capacityBytes, let oldest = entries.min(by: { $0.value.stamp < $1.value.stamp }) {
            bytes -= oldest.value.image.pixels.count
            entries[oldest.key] = nil
        }
    }

    public var residentBytes: Int {
        lock.lock()
        defer { lock.unlock() }
        return bytes
    }
}
