import Foundation

/// Why a file cannot be written into `url`'s folder, in the user's words (the folder is missing,
/// is a file, or is not writable), or nil when the folder looks writable.
enum OutputFolder {
    static func problem(for url: URL) -> String? {
        let folder = url.deletingLastPathComponent().path
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder) else { return "the folder \(folder) does not exist; create it first" }
        guard isFolder.boolValue else { return "\(folder) is a file, not a folder" }
        guard access(folder, W_OK) == 0 else { return "the folder \(folder) is not writable" }
        return nil
    }
}
