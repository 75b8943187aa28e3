/// An array kept in chunks of 16,384 elements: appending never copies what is there, and at most
/// one chunk stands unused, so a column of a large data set costs its size (an `Array` grown by
/// doubling costs up to twice that at its peak, and the allocator keeps what it freed).
public struct ChunkedArray<Element>: RandomAccessCollection, MutableCollection {
    static var shift: Int { 14 }
    static var mask: Int { (1 << shift) - 1 }
    private var chunks: [[Element]] = []
    public private(set) var count = 0

    public init() {}

    public init<S: Sequence>(_ elements: S) where S.Element == Element {
        for element in elements { append(element) }
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { count }

    public subscript(index: Int) -> Element {
        get { chunks[index >> Self.shift][index & Self.mask] }
        set { chunks[index >> Self.shift][index & Self.mask] = newValue }
    }

    public mutating func append(_ element: Element) {
        if count & Self.mask == 0 {
            var chunk: [Element] = []
            chunk.reserveCapacity(1 << Self.shift)
            chunks.append(chunk)
        }
        chunks[chunks.count - 1].append(element)
        count += 1
    }
}

extension ChunkedArray: Sendable where Element: Sendable {}
