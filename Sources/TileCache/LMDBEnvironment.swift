import CLMDB
import Foundation
import Glibc

/// An LMDB environment (one directory with `data.mdb` and `lock.mdb`) with one unnamed database.
///
/// Ownership and threading: `MDB_env*` is owned by this object and closed in `deinit`.
/// Opened with `MDB_NOTLS`, so a read transaction is not tied to its thread. Writes are
/// serialised by `writeLock` and each runs in one transaction on the calling thread (never across
/// an `await`); any number of reads run concurrently. When a write finds the map full it aborts,
/// doubles the map size while no transaction of this process is active (`mapLock` held
/// exclusively), and retries: callers compress before calling, so a retry is cheap.
public final class LMDBEnvironment: @unchecked Sendable {
    public let path: String
    private let env: OpaquePointer
    private let writeLock = NSLock()
    private var mapLock = pthread_rwlock_t()
    public let readOnly: Bool
    private var geometry = MapGeometry(file: "", pageSize: 0)

    public init(path: String, readOnly: Bool = false, initialMapSize: Int = 64 << 20) throws {
        self.path = path
        self.readOnly = readOnly
        let fm = FileManager.default
        if !readOnly {
            do { try fm.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
                throw CacheError(.cannotOpen, path, "cannot create the cache directory (\(error.localizedDescription)); choose a writable location")
            }
            if !fm.isWritableFile(atPath: path) {
                throw CacheError(.readOnly, path, "the cache directory is read-only; make it writable or open the cache read-only (verify/stats)")
            }
        } else if !fm.fileExists(atPath: path + "/data.mdb") {
            throw CacheError(.cannotOpen, path, "no cache here (no data.mdb); check the path")
        }
        // liblmdb trusts its file: the meta pages and the file's length are checked before it
        // opens it, its trees once it is open (below).
        if fm.fileExists(atPath: path + "/data.mdb") {
            let file = try LMDBFileCheck(file: path + "/data.mdb")
            defer { file.close() }
            try file.checkMetas()
        }
        // Opened through a local handle and stored only once open: a throw before `env` is set
        // leaves the object uninitialised, so `deinit` does not close the handle a second time.
        var handle: OpaquePointer?
        try LMDBEnvironment.check(mdb_env_create(&handle), path, "creating the environment")
        mdb_env_set_mapsize(handle, initialMapSize)
        mdb_env_set_maxreaders(handle, 126)
        let flags = UInt32(MDB_NOTLS) | (readOnly ? UInt32(MDB_RDONLY) : 0)
        let status = mdb_env_open(handle, path, flags, 0o644)
        if status != 0 {
            mdb_env_close(handle)
            let kind: CacheError.Kind = status == EACCES || status == EROFS ? .readOnly : .cannotOpen
            throw CacheError(kind, path, "cannot open the LMDB cache (\(LMDBEnvironment.message(status))); check the path and permissions, or run `ssmamba cache verify \(path)`")
        }
        env = handle!
        pthread_rwlock_init(&mapLock, nil)
        var stat = MDB_stat()
        mdb_env_stat(env, &stat)
        geometry = MapGeometry(file: path + "/data.mdb", pageSize: Int(stat.ms_psize))
        try checkTrees(freeListContents: !readOnly)
    }

    /// Checks the file's trees (`LMDBFileCheck`; the free list's contents too when writes will take
    /// pages from it) in the snapshot of a read transaction, which keeps a concurrent writer from
    /// reusing the pages being checked.
    private func checkTrees(freeListContents: Bool) throws {
        let file = try LMDBFileCheck(file: path + "/data.mdb")
        defer { file.close() }
        for _ in 0..<16 {
            var txn: OpaquePointer?
            try LMDBEnvironment.check(mdb_txn_begin(env, nil, UInt32(MDB_RDONLY), &txn), path, "starting a read")
            defer { mdb_txn_abort(txn) }
            if try file.checkTrees(transaction: UInt64(mdb_txn_id(txn)), freeListContents: freeListContents) { return }
        }
        throw CacheError(.lmdb, path, "the cache kept changing while it was being checked; run again when its writer has finished")
    }


    deinit {
        mdb_env_close(env)
        pthread_rwlock_destroy(&mapLock)
    }

    static func message(_ status: Int32) -> String { String(cString: mdb_strerror(status)) }

    static func check(_ status: Int32, _ path: String, _ what: String) throws {
        guard status == 0 else {
            // EFBIG: the file-size limit (ulimit -f, quotas) acts like a full disk. LMDB turns a short
            // write into EIO, so an I/O error is also checked against free space and the size limit.
            let full = status == ENOSPC || status == EFBIG || status == EDQUOT || (status == EIO && outOfRoom(path))
            let kind: CacheError.Kind = full ? .diskFull : status == EACCES || status == EROFS ? .readOnly : .lmdb
            let advice = kind == .diskFull ? "; free disk space (or raise the file-size limit) and run again (what was written is kept)" : ""
            throw CacheError(kind, path, "\(what) failed: \(message(status))\(advice)")
        }
    }

    /// Whether the cache at `path` is out of room: under 64 MB free on its file system, or its data
    /// file within 1 MB of the process's file-size limit.
    static func outOfRoom(_ path: String) -> Bool {
        var info = statvfs()
        if statvfs(path, &info) == 0, UInt64(info.f_bavail) * UInt64(info.f_frsize) < 64 << 20 { return true }
        var limit = rlimit()
        let data = (path as NSString).appendingPathComponent("data.mdb")
        if getrlimit(Int32(RLIMIT_FSIZE.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max,
           let size = (try? FileManager.default.attributesOfItem(atPath: data)[.size] as? NSNumber)?.uint64Value,
           size + (1 << 20) >= UInt64(limit.rlim_cur) {
            return true
        }
        return false
    }

    /// Bytes of map currently reserved.
    public var mapSize: Int {
        var info = MDB_envinfo()
        mdb_env_info(env, &info)
        return info.me_mapsize
    }

    // MARK: writes

    /// Writes every pair in one transaction. With `overwrite` false an existing key keeps its
    /// value (skip-if-present); returns how many pairs were newly stored.
    @discardableResult
    public func put(_ pairs: [(key: [UInt8], value: [UInt8])], overwrite: Bool = false) throws -> Int {
        guard !readOnly else { throw CacheError(.readOnly, path, "the cache was opened read-only") }
        writeLock.lock()
        defer { writeLock.unlock() }
        while true {
            pthread_rwlock_rdlock(&mapLock)
            let result = writeOnce(pairs, overwrite: overwrite)
            pthread_rwlock_unlock(&mapLock)
            switch result {
            case .stored(let count): return count
            case .failed(let status) where status == MDB_MAP_FULL:
                try grow()
            case .failed(let status):
                try LMDBEnvironment.check(status, path, "writing \(pairs.count) record(s)")
            }
        }
    }

    /// Removes keys (absent ones are ignored); returns how many were removed.
    @discardableResult
    public func delete(_ keys: [[UInt8]]) throws -> Int {
        guard !readOnly else { throw CacheError(.readOnly, path, "the cache was opened read-only") }
        writeLock.lock()
        defer { writeLock.unlock() }
        pthread_rwlock_rdlock(&mapLock)
        defer { pthread_rwlock_unlock(&mapLock) }
        var txn: OpaquePointer?
        try LMDBEnvironment.check(mdb_txn_begin(env, nil, 0, &txn), path, "starting a write")
        var dbi: MDB_dbi = 0
        var removed = 0
        do {
            try LMDBEnvironment.check(mdb_dbi_open(txn, nil, 0, &dbi), path, "opening the database")
            for key in keys {
                var k = key
                // liblmdb frees as many pages as a value's overflow header counts: a damaged header
                // is rewritten from the node's size first (the writer lock is held; readers never read it).
                var value = MDB_val()
                let found = k.withUnsafeMutableBytes { kb -> Int32 in
                    var mk = MDB_val(mv_size: kb.count, mv_data: kb.baseAddress)
                    return mdb_get(txn, dbi, &mk, &value)
                }
                if found == 0 { try geometry.repairOverflowHeader(UnsafeRawBufferPointer(start: value.mv_data, count: value.mv_size)) }
                let status = k.withUnsafeMutableBytes { kb -> Int32 in
                    var mk = MDB_val(mv_size: kb.count, mv_data: kb.baseAddress)
                    return mdb_del(txn, dbi, &mk, nil)
                }
                if status == 0 { removed += 1 } else if status != MDB_NOTFOUND { try LMDBEnvironment.check(status, path, "deleting") }
            }
            try LMDBEnvironment.check(mdb_txn_commit(txn), path, "committing deletions")
        } catch {
            mdb_txn_abort(txn)
            throw error
        }
        return removed
    }

    private enum WriteOutcome {
        case stored(Int)
        case failed(Int32)
    }

    private func writeOnce(_ pairs: [(key: [UInt8], value: [UInt8])], overwrite: Bool) -> WriteOutcome {
        var txn: OpaquePointer?
        var status = mdb_txn_begin(env, nil, 0, &txn)
        guard status == 0 else { return .failed(status) }
        var dbi: MDB_dbi = 0
        status = mdb_dbi_open(txn, nil, 0, &dbi)
        guard status == 0 else { mdb_txn_abort(txn); return .failed(status) }
        var stored = 0
        for pair in pairs {
            var key = pair.key, value = pair.value
            status = key.withUnsafeMutableBytes { kb in
                value.withUnsafeMutableBytes { vb in
                    var mk = MDB_val(mv_size: kb.count, mv_data: kb.baseAddress)
                    var mv = MDB_val(mv_size: vb.count, mv_data: vb.baseAddress)
                    return mdb_put(txn, dbi, &mk, &mv, overwrite ? 0 : UInt32(MDB_NOOVERWRITE))
                }
            }
            if status == MDB_KEYEXIST { continue }
            guard status == 0 else { mdb_txn_abort(txn); return .failed(status) }
            stored += 1
        }
        status = mdb_txn_commit(txn)
        return status == 0 ? .stored(stored) : .failed(status)
    }

    /// Doubles the map; legal only with no transaction of this process active, which the
    /// exclusive map lock guarantees.
    private func grow() throws {
        pthread_rwlock_wrlock(&mapLock)
        defer { pthread_rwlock_unlock(&mapLock) }
        let doubled = mapSize * 2
        try LMDBEnvironment.check(mdb_env_set_mapsize(env, doubled), path, "growing the map to \(doubled) bytes")
    }

    // MARK: reads

    /// Runs `body` inside one read transaction. Values handed to `body` point into the map and
    /// are valid only inside it: copy or decode before returning.
    ///
    /// With `releasingPages`, the pages the transaction read are then dropped from this process's
    /// mapping (MADV_DONTNEED; they stay in the page cache and fault back in when read again):
    /// for scans and training reads, which would otherwise leave every page of a large cache
    /// resident in the process (the kernel maps neighbouring pages on each fault too).
    public func read<R>(releasingPages: Bool = false, _ body: (LMDBReadTransaction) throws -> R) throws -> R {
        pthread_rwlock_rdlock(&mapLock)
        defer { pthread_rwlock_unlock(&mapLock) }
        var txn: OpaquePointer?
        try LMDBEnvironment.check(mdb_txn_begin(env, nil, UInt32(MDB_RDONLY), &txn), path, "starting a read")
        defer { mdb_txn_abort(txn) }
        var dbi: MDB_dbi = 0
        let status = mdb_dbi_open(txn, nil, 0, &dbi)
        let touched = releasingPages ? TouchedSpan() : nil
        if status == MDB_NOTFOUND { return try body(LMDBReadTransaction(txn: txn!, dbi: nil, path: path, touched: nil, geometry: geometry)) }
        try LMDBEnvironment.check(status, path, "opening the database")
        let result = try body(LMDBReadTransaction(txn: txn!, dbi: dbi, path: path, touched: touched, geometry: geometry))
        touched?.release()
        return result
    }
}

/// The span of map addresses a read transaction handed out, and how to drop its pages.
final class TouchedSpan {
    private var low = UInt.max, high = UInt(0)

    func note(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        let start = UInt(bitPattern: base)
        (low, high) = (min(low, start), max(high, start + UInt(bytes.count)))
    }

    /// MADV_DONTNEED over the whole pages of the span (read-only shared file pages: nothing is lost).
    func release() {
        guard low < high else { return }
        let page = UInt(sysconf(Int32(_SC_PAGESIZE)))
        let first = low / page * page, end = (high + page - 1) / page * page
        _ = madvise(UnsafeMutableRawPointer(bitPattern: first), Int(end - first), Int32(MADV_DONTNEED))
    }
}

/// A read transaction's view of the database.
public struct LMDBReadTransaction {
    let txn: OpaquePointer
    let dbi: MDB_dbi?
    let path: String
    let touched: TouchedSpan?
    let geometry: MapGeometry

    /// What is wrong with the header of the overflow pages holding `value` (a value this
    /// transaction returned), or nil when it is intact or `value` sits in a leaf page.
    public func overflowHeaderDamage(_ value: UnsafeRawBufferPointer) -> String? {
        geometry.overflowHeaderDamage(value)
    }

    /// The value of `key`, valid until the transaction ends; nil if absent.
    public func get(_ key: [UInt8]) throws -> UnsafeRawBufferPointer? {
        guard let dbi else { return nil }
        var k = key
        var value = MDB_val()
        let status = k.withUnsafeMutableBytes { kb -> Int32 in
            var mk = MDB_val(mv_size: kb.count, mv_data: kb.baseAddress)
            return mdb_get(txn, dbi, &mk, &value)
        }
        if status == MDB_NOTFOUND { return nil }
        try LMDBEnvironment.check(status, path, "reading a record")
        let bytes = UnsafeRawBufferPointer(start: value.mv_data, count: value.mv_size)
        touched?.note(bytes)
        return bytes
    }

    /// Every (key, value) in key order; both valid only during the call of `body`.
    public func forEach(_ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Void) throws {
        guard let dbi else { return }
        var cursor: OpaquePointer?
        try LMDBEnvironment.check(mdb_cursor_open(txn, dbi, &cursor), path, "opening a cursor")
        defer { mdb_cursor_close(cursor) }
        var key = MDB_val(), value = MDB_val()
        var status = mdb_cursor_get(cursor, &key, &value, MDB_FIRST)
        while status == 0 {
            let (k, v) = (UnsafeRawBufferPointer(start: key.mv_data, count: key.mv_size), UnsafeRawBufferPointer(start: value.mv_data, count: value.mv_size))
            touched?.note(k)
            touched?.note(v)
            try body(k, v)
            status = mdb_cursor_get(cursor, &key, &value, MDB_NEXT)
        }
        if status != MDB_NOTFOUND { try LMDBEnvironment.check(status, path, "iterating") }
    }

    public var count: Int {
        guard let dbi else { return 0 }
        var stat = MDB_stat()
        mdb_stat(txn, dbi, &stat)
        return stat.ms_entries
    }
}

/// Where liblmdb stored a value: enough to find the page header in front of a value it stored on
/// overflow pages (`LMDBFileCheck.Layout`). liblmdb does not tell where it mapped the file
/// (`me_mapaddr` is only set for fixed maps), so the mapping holding a value is looked up in
/// /proc/self/maps, by the data file's device and inode, and remembered until the map moves.
final class MapGeometry: @unchecked Sendable {
    let file: String
    let pageSize: Int
    private let identity: (device: UInt64, inode: UInt64)?
    private let lock = NSLock()
    /// Mappings of the data file: address range and the file offset at its start.
    private var mappings: [(start: UInt, end: UInt, offset: UInt)] = []

    init(file: String, pageSize: Int) {
        (self.file, self.pageSize) = (file, pageSize)
        var info = stat()
        identity = !file.isEmpty && stat(file, &info) == 0 ? (UInt64(info.st_dev), UInt64(info.st_ino)) : nil
    }

    /// The file offset of `address`, if it lies in a mapping of the data file (not in a page a
    /// write transaction copied to the heap).
    func fileOffset(of address: UInt) -> Int? {
        lock.lock()
        defer { lock.unlock() }
        if let hit = mappings.first(where: { address >= $0.start && address < $0.end }) { return Int(address - hit.start + hit.offset) }
        mappings = currentMappings()
        return mappings.first(where: { address >= $0.start && address < $0.end }).map { Int(address - $0.start + $0.offset) }
    }

    private func currentMappings() -> [(start: UInt, end: UInt, offset: UInt)] {
        guard let identity, let text = try? String(contentsOfFile: "/proc/self/maps", encoding: .utf8) else { return [] }
        var found: [(start: UInt, end: UInt, offset: UInt)] = []
        for line in text.split(separator: "\n") {
            // start-end perms offset major:minor inode path
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 6, UInt64(fields[4]) == identity.inode else { continue }
            let range = fields[0].split(separator: "-"), device = fields[3].split(separator: ":")
            guard range.count == 2, device.count == 2, let start = UInt(range[0], radix: 16), let end = UInt(range[1], radix: 16),
                  let offset = UInt(fields[2], radix: 16), let major = UInt64(device[0], radix: 16), let minor = UInt64(device[1], radix: 16),
                  major == (identity.device >> 32 & 0xFFFF_F000) | (identity.device >> 8 & 0xFFF),
                  minor == (identity.device >> 12 & 0xFFFF_FF00) | (identity.device & 0xFF) else { continue }
            found.append((start, end, offset))
        }
        return found
    }

    /// The first page and page count of the overflow run holding `value`; nil for a value inside a
    /// leaf page (which never starts right after a page header) or outside the map.
    func overflowRun(_ value: UnsafeRawBufferPointer) -> (page: Int, pages: Int)? {
        guard let start = value.baseAddress, pageSize > 0, let offset = fileOffset(of: UInt(bitPattern: start)),
              offset % pageSize == LMDBFileCheck.Layout.pageHeader else { return nil }
        return (offset / pageSize, LMDBFileCheck.Layout.overflowPages(value.count, pageSize: pageSize))
    }
    func overflowHeaderDamage(_ value: UnsafeRawBufferPointer) -> String? {
        guard let run = overflowRun(value), let start = value.baseAddress else { return nil }
        let header = start - LMDBFileCheck.Layout.pageHeader
        let page = header.loadUnaligned(as: UInt64.self)
        let flags = header.loadUnaligned(fromByteOffset: 10, as: UInt16.self)
        let pages = header.loadUnaligned(fromByteOffset: 12, as: UInt32.self)
        guard page == UInt64(run.page), flags & LMDBFileCheck.Layout.typeBits == LMDBFileCheck.Layout.overflow, pages == UInt32(run.pages) else {
            return "the header of its overflow page \(run.page) is damaged"
        }
        return nil
    }

    /// Rewrites a damaged overflow header of `value` in the data file (the caller holds the write lock).
    func repairOverflowHeader(_ value: UnsafeRawBufferPointer) throws {
        guard overflowHeaderDamage(value) != nil, let run = overflowRun(value) else { return }
        var header = [UInt8](repeating: 0, count: LMDBFileCheck.Layout.pageHeader)
        header.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: UInt64(run.page), toByteOffset: 0, as: UInt64.self)
            raw.storeBytes(of: LMDBFileCheck.Layout.overflow, toByteOffset: 10, as: UInt16.self)
            raw.storeBytes(of: UInt32(run.pages), toByteOffset: 12, as: UInt32.self)
        }
        let descriptor = open(file, O_WRONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw CacheError(.readOnly, file, "cannot open the cache file to repair it (\(String(cString: strerror(errno))))") }
        defer { close(descriptor) }
        let written = header.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, off_t(run.page * pageSize)) }
        guard written == header.count else { throw CacheError(.lmdb, file, "repairing the header of overflow page \(run.page) failed (\(String(cString: strerror(errno))))") }
    }
}
