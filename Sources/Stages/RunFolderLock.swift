import Foundation
import Glibc

/// One run at a time in a run folder: an exclusive `flock` on `<folder>/.run.lock`, held while the
/// run lasts and released by the kernel if the process dies. A second run of the same flow (two
/// `cache warm`s, a `run` started twice) would overwrite the first one's report and checkpoints;
/// it stops at once instead, naming the process that holds the folder.
final class RunFolderLock {
    private var descriptor: Int32

    init(_ folder: URL) throws {
        let path = folder.appendingPathComponent(".run.lock").path
        descriptor = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw StageError("cannot create \(path) (\(String(cString: strerror(errno)))); choose another run folder with --out")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            var buffer = [UInt8](repeating: 0, count: 32)
            let count = pread(descriptor, &buffer, buffer.count, 0)
            let holder = String(decoding: buffer.prefix(max(0, count)), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            close(descriptor)
            descriptor = -1
            throw StageError("the run folder \(folder.path) is in use by another run\(holder.isEmpty ? "" : " (process \(holder))"); wait for it to finish, or give this run another folder with --out")
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(descriptor, 0)
        _ = pwrite(descriptor, pid, pid.count, 0)
    }

    /// Releases the folder (also done by the kernel when the process ends).
    func release() {
        guard descriptor >= 0 else { return }
        close(descriptor)
        descriptor = -1
    }
}
