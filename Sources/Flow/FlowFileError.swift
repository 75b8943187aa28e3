/// A place in a flow file: path, 1-based line and column.
public struct FlowFileLocation: Sendable, Equatable, CustomStringConvertible {
    public let file: String
    public let line: Int
    public let column: Int
    public var description: String { line > 0 ? "\(file):\(line):\(column)" : file }

    public init(file: String, line: Int, column: Int) { (self.file, self.line, self.column) = (file, line, column) }
}

/// A mistake in a flow file, with where it is and what to do.
public struct FlowFileIssue: Sendable, CustomStringConvertible {
    public let location: FlowFileLocation
    public let message: String
    public var description: String { "\(location): \(message)" }

    public init(location: FlowFileLocation, message: String) { (self.location, self.message) = (location, message) }
}

/// Every mistake found in a flow file; nothing has run.
public struct FlowFileError: Error, CustomStringConvertible {
    public let issues: [FlowFileIssue]
    public var description: String { issues.map(\.description).joined(separator: "\n") }

    public init(issues: [FlowFileIssue]) { self.issues = issues }
}
