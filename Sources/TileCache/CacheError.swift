import Diagnostics

/// A cache problem, naming the cache directory (and key) and what to do.
public struct CacheError: Problem, Equatable {
    public enum Kind: String, Sendable { case cannotOpen, readOnly, diskFull, corruptRecord, damaged, lmdb }
    public let kind: Kind
    public let path: String
    public let message: String

    public init(_ kind: Kind, _ path: String, _ message: String) {
        (self.kind, self.path, self.message) = (kind, path, message)
    }

    public var kindName: String { kind.rawValue }
    public var subject: String { path }
}
