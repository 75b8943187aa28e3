/// A pointer that may cross into Dispatch workers. Ownership rule: the caller keeps the memory
/// alive until every worker has returned, and workers write disjoint parts of it.
public struct SharedPointer<T>: @unchecked Sendable {
    public let base: UnsafeMutablePointer<T>
    @inlinable public init(_ base: UnsafeMutablePointer<T>) { self.base = base }
    @inlinable public init(_ base: UnsafePointer<T>) { self.base = UnsafeMutablePointer(mutating: base) }
}
