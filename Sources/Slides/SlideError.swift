import Diagnostics

/// What went wrong reading a slide or image, always naming the file and saying what to do.
public struct SlideError: Problem, Equatable {
    public enum Kind: String, Sendable {
        /// `missingResolution`: the file records no usable µm/px (none, or an implausible value).
        case cannotOpen, notSupported, corruptData, missingResolution, invalidRequest
    }

    public let kind: Kind
    public let path: String
    public let message: String

    public init(_ kind: Kind, _ path: String, _ message: String) {
        (self.kind, self.path, self.message) = (kind, path, message)
    }

    public var kindName: String { kind.rawValue }
    public var subject: String { path }
}
