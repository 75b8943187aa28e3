/// A failure of a stage on user data, saying what to do.
public struct StageError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
