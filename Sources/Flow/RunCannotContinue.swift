/// An error after which no later item could succeed either (a full disk, an output folder that is
/// not writable): a stage throws it to stop the whole run as failed, whatever its `on_error`
/// policy, instead of failing every remaining item one by one.
public struct RunCannotContinue: Error, CustomStringConvertible {
    public let underlying: Error

    public init(_ underlying: Error) { self.underlying = underlying }

    public var description: String { String(describing: underlying) }
}
