import Foundation

/// A failure the user can act on: printed as `Error: …` and exit status 1, without the usage text.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension CommandFailure {
    /// Creates `folder` for a command's output, or fails saying which folder and what to do (not
    /// the system's raw error domain and code).
    static func makeOutputFolder(_ folder: URL, option: String = "--out") throws {
        do { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true) } catch {
            let underlying = (error as NSError).userInfo[NSUnderlyingErrorKey] as? NSError
            let reason = underlying?.localizedDescription ?? error.localizedDescription
            throw CommandFailure("\(folder.path): cannot create the output folder (\(reason)); give \(option) a writable folder path that is not a file")
        }
    }
}
