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
        if status == MDB_NOTFOUND { return try body(LMDBReadTransaction(txn: txn!, dbi: nil, path: path, touched: nil)) }
        try LMDBEnvironment.check(status, path, "opening the database")
        let result = try body(LMDBReadTransaction(txn: txn!, dbi: dbi, path: path, touched: touched))
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
