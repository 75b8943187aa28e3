/// A dense, contiguous, row-major tensor of `Float` values.
///
/// Storage is a Swift array, so copies are copy-on-write: `reshaped(_:)` is a free view that shares
/// storage until one side is mutated. Shape mismatches are programming errors and trap; errors in
/// user data are reported by the modules that read it, before a tensor is built.
public struct Tensor: Sendable, Equatable {
    /// Extent of each axis, outermost first.
    public private(set) var shape: [Int]
    /// The values in row-major order; `scalars.count == shape.product`.
    public var scalars: [Float]

    public init(shape: [Int], scalars: [Float]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative extent in shape \(shape)")
        precondition(Tensor.count(of: shape) == scalars.count,
                     "shape \(shape) needs \(Tensor.count(of: shape)) values, got \(scalars.count)")
        self.shape = shape
        self.scalars = scalars
    }

    public init(zeros shape: [Int]) {
        self.init(repeating: 0, shape: shape)
    }

    /// A tensor for a kernel to overwrite completely: no zero fill. Its elements are unspecified
    /// until written; every element must be written before it is read.
    public init(uninitialized shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative extent in shape \(shape)")
        let count = Tensor.count(of: shape)
        self.shape = shape
        self.scalars = [Float](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
    }

    public init(repeating value: Float, shape: [Int]) {
        self.init(shape: shape, scalars: [Float](repeating: value, count: Tensor.count(of: shape)))
    }

    /// Number of elements of a tensor of this shape (1 for a scalar shape `[]`).
    public static func count(of shape: [Int]) -> Int {
        shape.reduce(1, *)
    }

    public var count: Int { scalars.count }
    public var rank: Int { shape.count }

    /// Row-major strides in elements: the last axis has stride 1.
    public var strides: [Int] {
        var result = [Int](repeating: 1, count: shape.count)
        var step = 1
        for axis in shape.indices.reversed() {
            result[axis] = step
            step *= shape[axis]
        }
        return result
    }

    /// The same values under another shape with the same element count; no copy is made.
    /// One extent may be `-1`, meaning "whatever makes the count match".
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var resolved = newShape
        if let unknown = newShape.firstIndex(of: -1) {
            let known = newShape.enumerated().filter { $0.offset != unknown }.reduce(1) { $0 * $1.element }
            precondition(known > 0 && count % known == 0, "cannot reshape \(shape) to \(newShape)")
            resolved[unknown] = count / known
        }
        return Tensor(shape: resolved, scalars: scalars)
    }

    /// The element at a full multi-index.
    public subscript(_ index: Int...) -> Float {
        get { scalars[offset(of: index)] }
        set { scalars[offset(of: index)] = newValue }
    }

    /// Row-major offset of a full multi-index.
    public func offset(of index: [Int]) -> Int {
        precondition(index.count == shape.count, "index \(index) has the wrong rank for shape \(shape)")
        var offset = 0
        for axis in shape.indices {
            precondition(index[axis] >= 0 && index[axis] < shape[axis], "index \(index) out of range for shape \(shape)")
            offset = offset * shape[axis] + index[axis]
        }
        return offset
    }

    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try scalars.withUnsafeBufferPointer(body)
    }

    public mutating func withUnsafeMutableBufferPointer<R>(
        _ body: (inout UnsafeMutableBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        try scalars.withUnsafeMutableBufferPointer(body)
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let preview = scalars.prefix(8).map { String($0) }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(preview)\(count > 8 ? ", …" : "")])"
    }
}

extension Tensor {
    /// Samples `range` of a batch (the first axis), copied.
    public func samples(_ range: Range<Int>) -> Tensor {
        if range == 0..<shape[0] { return self }
        let perSample = count / Swift.max(1, shape[0])
        return Tensor(shape: [range.count] + shape.dropFirst(), scalars: Array(scalars[(range.lowerBound * perSample)..<(range.upperBound * perSample)]))
    }
}
