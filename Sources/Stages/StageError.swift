import Diagnostics

/// A failure of a stage on user data, saying what to do.
public struct StageError: Problem {
    public enum Kind: String, Sendable {
        /// Data or a value the stage cannot use (most failures).
        case invalidInput
        /// Something that should not happen: a bug to report.
        case bug
    }
    public let kind: Kind
    /// The file, tile or step the failure is about; empty when the message names it.
    public let subject: String
    public let message: String
    public var kindName: String { kind.rawValue }

    public init(_ kind: Kind, _ subject: String, _ message: String) {
        (self.kind, self.subject, self.message) = (kind, subject, message)
    }

    /// A failure whose message names its subject itself.
    public init(_ message: String) { self.init(.invalidInput, "", message) }
}
