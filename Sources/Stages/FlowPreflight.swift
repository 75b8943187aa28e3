import Flow
import Foundation

/// What a flow needs from the machine before it runs: slides for its `slides` sources, and a run
/// folder and caches it can write. `flow check` reports these with the step's line, and `run`
/// checks them before it creates anything, so a flow that cannot run says what to fix instead of
/// failing later and leaving an empty run folder behind.
public enum FlowPreflight {
    public static func problems(_ flow: FlowFile, runFolder: URL? = nil) -> [FlowFileIssue] {
        var issues: [FlowFileIssue] = []
        let folder = runFolder?.path ?? flow.output
        if let problem = writableFolderProblem(folder) {
            issues.append(FlowFileIssue(location: FlowFileLocation(file: flow.path, line: 0, column: 0),
                                        message: "the run folder \(folder) \(problem); choose another with `output:` or --out"))
        }
        for step in flow.sources where step.kind.name == SlidesKind.name {
            do { _ = try SlideListing(try SlidesKind.decode(step.parameters)) } catch {
                issues.append(FlowFileIssue(location: step.location, message: "'\(step.name)' (slides): \(error)"))
            }
        }
        for step in flow.stages where step.kind.name == CacheKind.name {
            guard let path = try? CacheKind.decode(step.parameters).path else { continue }
            if let problem = writableFolderProblem(path) {
                issues.append(FlowFileIssue(location: step.location, message: "'\(step.name)' (cache): the cache folder \(path) \(problem); give `path:` a writable folder"))
            }
        }
        return issues
    }

    /// Why `path` cannot be a folder this process writes into, or nil: an existing file, a folder
    /// without write permission, or (when absent) a nearest existing ancestor that is not a
    /// writable folder.
    static func writableFolderProblem(_ path: String) -> String? {
        let manager = FileManager.default
        var isFolder: ObjCBool = false
        if manager.fileExists(atPath: path, isDirectory: &isFolder) {
            guard isFolder.boolValue else { return "is a file, not a folder" }
            return access(path, W_OK) == 0 ? nil : "is not writable"
        }
        var ancestor = URL(fileURLWithPath: path).standardizedFileURL.deletingLastPathComponent()
        while !manager.fileExists(atPath: ancestor.path, isDirectory: &isFolder) && ancestor.path != "/" {
            ancestor = ancestor.deletingLastPathComponent()
        }
        guard isFolder.boolValue else { return "cannot be created: \(ancestor.path) is a file" }
        return access(ancestor.path, W_OK) == 0 ? nil : "cannot be created: \(ancestor.path) is not writable"
    }
}
