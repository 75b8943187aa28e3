import Foundation

/// A file written piece by piece under a temporary name (`.<name>.partial` beside it) and moved
/// into place by `commit()`; dropped without committing (a failed or stopped slide), it leaves no
/// half-written file behind.
final class PartialFile {
    let url: URL
    private let partial: URL
    private let handle: FileHandle
    private var committed = false

    init(_ url: URL) throws {
        self.url = url
        partial = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).partial")
        guard FileManager.default.createFile(atPath: partial.path, contents: nil), let handle = FileHandle(forWritingAtPath: partial.path) else {
            throw StageError(.invalidInput, partial.path, "cannot write: check that the output folder is writable and the disk has space")
        }
        self.handle = handle
    }

    deinit {
        guard !committed else { return }
        try? handle.close()
        try? FileManager.default.removeItem(at: partial)
    }

    func write(_ text: String) { handle.write(Data(text.utf8)) }
    func write(_ data: Data) { handle.write(data) }

    /// Closes the file and moves it into place, replacing an earlier one.
    func commit() throws {
        try handle.close()
        _ = try? FileManager.default.removeItem(at: url)
        try FileManager.default.moveItem(at: partial, to: url)
        committed = true
    }
}
