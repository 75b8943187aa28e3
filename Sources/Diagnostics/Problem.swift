/// The one shape of the errors SSMamba reports to its users, whatever module throws them: a kind
/// (for code that reacts to it, and for counting), the subject it is about (a file or folder, a
/// tile, a place in a flow file such as `flow.yaml:12:5`, a step, a rank; empty when the message
/// names it), and a message that says what happened and what to do about it.
///
/// Printed as `subject: message`, the form every error of the command line has.
public protocol Problem: Error, CustomStringConvertible {
    /// A short, stable name of the kind of problem (`cannotOpen`, `damaged`, `unusableTarget`, …).
    var kindName: String { get }
    /// What the problem is about.
    var subject: String { get }
    /// What happened, and what to do.
    var message: String { get }
}

extension Problem {
    public var description: String { subject.isEmpty ? message : "\(subject): \(message)" }
}
