import Foundation
import Glibc

/// A structural check of an LMDB data file (`data.mdb`, the liblmdb 0.9 on-disk format), read with
/// `pread`, never through the memory map.
///
/// liblmdb trusts its file: a truncated file faults (SIGBUS) when a page past its end is touched,
/// and a damaged page header or node sends it through wild pointers (SIGSEGV), or divides by a
/// zero page size. So before liblmdb walks a cache, the pages it would follow are checked here:
///
/// - both meta pages (flags, magic, version, page size a power of two in 4 KiB…64 KiB, the
///   tree descriptions), and the file holds every page the chosen meta counts (`last_pg + 1`);
/// - every branch and leaf page of both trees (the free list and the records), from the roots:
///   the page number in the header, the page type for its level (all leaves at the tree's depth),
///   the slot array and every node inside the page, child and overflow page numbers inside the
///   file, each page reached once and no page shared by two owners, keys in strictly increasing
///   order within the bounds the branch keys set, and the page, record and depth counts equal to
///   the meta's;
/// - with `freeListContents`, every free-list entry (a count, then that many page numbers inside
///   the file, none of them in use), which writers take pages from.
///
/// The overflow pages holding record values are bounded here but not read; `LMDBEnvironment`
/// checks their headers where liblmdb reads them (deletes) and `TileStore.verify` for every record.
struct LMDBFileCheck {
    /// The layout constants of liblmdb 0.9 (`mdb.c`).
    enum Layout {
        static let pageHeader = 16                 // mp_pgno u64 · mp_pad u16 · mp_flags u16 · mp_lower u16 · mp_upper u16
        static let nodeHeader = 8                  // mn_lo u16 · mn_hi u16 · mn_flags u16 · mn_ksize u16
        static let branch: UInt16 = 0x01, leaf: UInt16 = 0x02, overflow: UInt16 = 0x04, meta: UInt16 = 0x08
        static let leaf2: UInt16 = 0x20, subpage: UInt16 = 0x40
        static let typeBits: UInt16 = branch | leaf | overflow | meta | leaf2 | subpage
        static let bigData: UInt16 = 0x01          // a leaf node whose value lives on overflow pages
        static let magic: UInt32 = 0xBEEF_C0DE
        static let version: UInt32 = 1
        static let invalidPage = UInt64.max
        static let metaPages = 2
        /// Overflow pages a value of `size` bytes takes (`OVPAGES`).
        static func overflowPages(_ size: Int, pageSize: Int) -> Int { (pageHeader - 1 + size) / pageSize + 1 }
    }

    /// One tree as a meta page describes it.
    struct Tree {
        var depth: Int, branchPages: UInt64, leafPages: UInt64, overflowPages: UInt64, entries: UInt64, root: UInt64
    }

    /// A meta page's contents.
    struct Meta {
        var pageSize: Int, freeList: Tree, records: Tree, lastPage: UInt64, transaction: UInt64
    }

    let file: String
    private let descriptor: Int32

    /// Opens `file` for reading; throws `.cannotOpen` if it cannot be read.
    init(file: String) throws {
        self.file = file
        descriptor = open(file, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw CacheError(.cannotOpen, file, "cannot read the cache file (\(String(cString: strerror(errno)))); check the path and permissions")
        }
    }

    func close() { _ = Glibc.close(descriptor) }

    /// The error for a damaged file: what is wrong and what to do.
    func damaged(_ what: String) -> CacheError {
        CacheError(.damaged, file, "the cache file is damaged (\(what)); it cannot be read safely. Move the cache folder aside and run the flow or `ssmamba cache warm` again to rebuild it (tiles are recomputed from their slides)")
    }

    /// `count` bytes at `offset`; a short read is damage (the file ends early).
    func bytes(at offset: Int, count: Int) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        let read = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, count, off_t(offset)) }
        guard read == count else {
            if read < 0 { throw CacheError(.cannotOpen, file, "reading the cache file failed (\(String(cString: strerror(errno))))") }
            throw damaged("it ends at byte \(offset + max(read, 0)), inside data it describes")
        }
        return buffer
    }

    /// The file's size in bytes.
    func size() throws -> Int {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw CacheError(.cannotOpen, file, "cannot stat the cache file (\(String(cString: strerror(errno))))") }
        return Int(info.st_size)
    }

    // MARK: meta pages

    /// Both meta pages, checked as liblmdb reads them and then some; nil for an empty (new) file.
    func metas() throws -> [Meta]? {
        let size = try size()
        if size == 0 { return nil }
        var metas: [Meta] = []
        var offset = 0
        for index in 0..<Layout.metaPages {
            let page = try bytes(at: offset, count: Layout.pageHeader + 136)
            let meta = try parseMeta(page, index: index)
            metas.append(meta)
            offset += metas[0].pageSize
        }
        return metas
    }

    private func parseMeta(_ page: [UInt8], index: Int) throws -> Meta {
        func u16(_ o: Int) -> UInt16 { page.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: o, as: UInt16.self) } }
        func u32(_ o: Int) -> UInt32 { page.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: o, as: UInt32.self) } }
        func u64(_ o: Int) -> UInt64 { page.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: o, as: UInt64.self) } }
        guard u16(10) & Layout.typeBits == Layout.meta else { throw damaged("page \(index) is not a meta page") }
        let m = Layout.pageHeader
        guard u32(m) == Layout.magic else { throw damaged("meta page \(index) has no LMDB magic number") }
        guard u32(m + 4) == Layout.version else { throw damaged("meta page \(index) has format version \(u32(m + 4)), not 1") }
        guard u64(m + 8) == 0 else { throw damaged("meta page \(index) asks for a fixed map address, which SSMamba never writes") }
        func tree(_ o: Int) -> Tree {
            Tree(depth: Int(u16(o + 6)), branchPages: u64(o + 8), leafPages: u64(o + 16), overflowPages: u64(o + 24),
                 entries: u64(o + 32), root: u64(o + 40))
        }
        let pageSize = Int(u32(m + 24))   // mm_psize lives in the free list's md_pad
        guard pageSize >= 4096, pageSize <= 65536, pageSize & (pageSize - 1) == 0 else {
            throw damaged("meta page \(index) gives a page size of \(pageSize) bytes")
        }
        return Meta(pageSize: pageSize, freeList: tree(m + 24), records: tree(m + 72), lastPage: u64(m + 120), transaction: u64(m + 128))
    }

    /// Checks the meta pages and that the file holds every page the newer one counts: run before
    /// liblmdb opens the file. Returns the page size (nil for an empty file).
    @discardableResult
    func checkMetas() throws -> Int? {
        guard let metas = try metas() else { return nil }
        guard metas[0].pageSize == metas[1].pageSize else { throw damaged("the two meta pages disagree on the page size") }
        let newest = metas[1].transaction > metas[0].transaction ? metas[1] : metas[0]
        try checkExtent(newest)
        return newest.pageSize
    }

    private func checkExtent(_ meta: Meta) throws {
        guard meta.lastPage >= UInt64(Layout.metaPages - 1), meta.lastPage < UInt64(Int.max) / UInt64(meta.pageSize) else {
            throw damaged("the meta page counts \(meta.lastPage) as its last page")
        }
        let needed = (Int(meta.lastPage) + 1) * meta.pageSize, size = try size()
        guard size >= needed else {
            throw damaged("it is truncated: \(size) bytes, its last page ends at byte \(needed)")
        }
    }

    // MARK: trees

    /// Checks both trees of the snapshot of `transaction` (the meta page that names it). Throws
    /// `.damaged` naming the page; returns false if neither meta page holds `transaction` any more
    /// (a writer committed twice meanwhile: begin a new read transaction and check again).
    func checkTrees(transaction: UInt64, freeListContents: Bool) throws -> Bool {
        guard let metas = try metas() else { return true }
        guard let meta = metas.first(where: { $0.transaction == transaction }) else { return false }
        try checkExtent(meta)
        var walk = TreeWalk(check: self, meta: meta)
        try walk.tree(meta.freeList, name: "free list", integerKeys: true, freeListContents: freeListContents)
        try walk.tree(meta.records, name: "records", integerKeys: false, freeListContents: false)
        if freeListContents { try walk.claimFreePages() }
        return true
    }
}

/// One pass over the trees of a snapshot (see `LMDBFileCheck`).
private struct TreeWalk {
    typealias Layout = LMDBFileCheck.Layout
    let check: LMDBFileCheck
    let meta: LMDBFileCheck.Meta
    let pageCount: Int
    /// One bit per page: owned by a tree page or a value's overflow run.
    private var owned: [UInt64]
    private var counts = (branch: UInt64(0), leaf: UInt64(0), overflow: UInt64(0), entries: UInt64(0))
    private var previousKey: [UInt8]?
    private var integerKeys = false
    private var freeListContents = false
    private var name = ""
    /// The pages the free list lists (read with `freeListContents`).
    private var freeList: [UInt64] = []

    init(check: LMDBFileCheck, meta: LMDBFileCheck.Meta) {
        (self.check, self.meta) = (check, meta)
        pageCount = Int(meta.lastPage) + 1
        owned = [UInt64](repeating: 0, count: (pageCount + 63) / 64)
    }

    mutating func tree(_ tree: LMDBFileCheck.Tree, name: String, integerKeys: Bool, freeListContents: Bool) throws {
        (self.name, self.integerKeys, self.freeListContents) = (name, integerKeys, freeListContents)
        counts = (0, 0, 0, 0)
        previousKey = nil
        if tree.root == Layout.invalidPage {
            guard tree.depth == 0, tree.entries == 0, tree.branchPages == 0, tree.leafPages == 0, tree.overflowPages == 0 else {
                throw check.damaged("the \(name) tree has no root but counts \(tree.entries) entries")
            }
            return
        }
        guard tree.depth >= 1, tree.depth <= 64 else { throw check.damaged("the \(name) tree has depth \(tree.depth)") }
        try visit(tree.root, level: 0, depth: tree.depth, low: nil, high: nil)
        guard counts.branch == tree.branchPages, counts.leaf == tree.leafPages, counts.overflow == tree.overflowPages,
              counts.entries == tree.entries else {
            throw check.damaged("the \(name) tree holds \(counts.entries) entries on \(counts.branch) branch, \(counts.leaf) leaf and \(counts.overflow) overflow pages; its meta page counts \(tree.entries), \(tree.branchPages), \(tree.leafPages) and \(tree.overflowPages)")
        }
    }

    /// Claims the free list's pages: a page both free and in use (or free twice) is damage, and
    /// would be handed out by the next write while still holding data.
    mutating func claimFreePages() throws {
        name = "free list"
        for page in freeList { try claim(page, count: 1, what: "the free list") }
    }

    /// Marks pages `first ..< first + count` owned; damage if outside the file or owned already.
    private mutating func claim(_ first: UInt64, count: Int, what: String) throws {
        guard first >= UInt64(Layout.metaPages), first < UInt64(pageCount), count >= 1, count <= pageCount - Int(first) else {
            throw check.damaged("\(what) points to page \(first) (+\(count)), outside the file's \(pageCount) pages")
        }
        for page in Int(first)..<(Int(first) + count) {
            let (word, bit) = (page / 64, UInt64(1) << UInt64(page % 64))
            guard owned[word] & bit == 0 else { throw check.damaged("\(what): page \(page) is used twice") }
            owned[word] |= bit
        }
    }

    /// Whether `a` sorts before `b` in the tree's key order.
    private func before(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        if integerKeys, a.count == 8, b.count == 8 {
            func value(_ bytes: [UInt8]) -> UInt64 { bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) } }
            return value(a) < value(b)
        }
        return a.lexicographicallyPrecedes(b)
    }

    private mutating func visit(_ number: UInt64, level: Int, depth: Int, low: [UInt8]?, high: [UInt8]?) throws {
        let where_ = "\(name) page \(number)"
        try claim(number, count: 1, what: "a branch of the \(name) tree")
        let pageSize = meta.pageSize
        let page = try check.bytes(at: Int(number) * pageSize, count: pageSize)
        func u16(_ o: Int) -> Int { Int(page.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: o, as: UInt16.self) }) }
        func u64(_ o: Int) -> UInt64 { page.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: o, as: UInt64.self) } }
        guard u64(0) == number else { throw check.damaged("\(where_) says it is page \(u64(0))") }
        let isLeaf = level == depth - 1
        let type = UInt16(u16(10)) & Layout.typeBits
        guard type == (isLeaf ? Layout.leaf : Layout.branch) else {
            throw check.damaged("\(where_) at level \(level) of \(depth) has page type \(type), not a \(isLeaf ? "leaf" : "branch")")
        }
        let (lower, upper) = (u16(12), u16(14))
        guard lower >= Layout.pageHeader, lower <= upper, upper <= pageSize, (lower - Layout.pageHeader) % 2 == 0 else {
            throw check.damaged("\(where_) has free-space bounds \(lower)…\(upper)")
        }
        let keys = (lower - Layout.pageHeader) / 2
        guard keys >= 1 else { throw check.damaged("\(where_) holds no entries") }
        if isLeaf { counts.leaf += 1 } else { counts.branch += 1 }
        var separators: [[UInt8]?] = []
        var children: [UInt64] = []
        for slot in 0..<keys {
            let offset = u16(Layout.pageHeader + 2 * slot)
            let at = "\(where_), entry \(slot)"
            guard offset >= upper, offset % 2 == 0, offset + Layout.nodeHeader <= pageSize else {
                throw check.damaged("\(at) starts at byte \(offset), outside the page's node area")
            }
            let (lo, hi, flags, keySize) = (u16(offset), u16(offset + 2), u16(offset + 4), u16(offset + 6))
            let keyStart = offset + Layout.nodeHeader
            guard keyStart + keySize <= pageSize else { throw check.damaged("\(at) has a \(keySize)-byte key running past the page") }
            let key = Array(page[keyStart..<(keyStart + keySize)])
            if isLeaf || slot > 0 {
                if let low, before(key, low) { throw check.damaged("\(at) has a key below its branch's range") }
                if let high, !before(key, high) { throw check.damaged("\(at) has a key above its branch's range") }
            }
            if isLeaf {
                if let previousKey, !before(previousKey, key) { throw check.damaged("\(at) is out of key order") }
                previousKey = key
                counts.entries += 1
                let size = lo | hi << 16
                let dataStart = keyStart + keySize
                var value: [UInt8]? = nil
                if UInt16(flags) == Layout.bigData {
                    guard dataStart + 8 <= pageSize else { throw check.damaged("\(at) has an overflow page number running past the page") }
                    let first = u64(dataStart)
                    let pages = Layout.overflowPages(size, pageSize: pageSize)
                    try claim(first, count: pages, what: "the value of \(at)")
                    counts.overflow += UInt64(pages)
                    if freeListContents { value = try check.bytes(at: Int(first) * pageSize + Layout.pageHeader, count: size) }
                } else {
                    guard flags == 0 else { throw check.damaged("\(at) has node flags \(flags), which this database never uses") }
                    guard dataStart + size <= pageSize else { throw check.damaged("\(at) has a \(size)-byte value running past the page") }
                    if freeListContents { value = Array(page[dataStart..<(dataStart + size)]) }
                }
                if let value { try freePages(value, at: at) }
            } else {
                children.append(UInt64(lo) | UInt64(hi) << 16 | UInt64(flags) << 32)
                separators.append(slot == 0 ? nil : key)
            }
        }
        guard !isLeaf else { return }
        for (index, child) in children.enumerated() {
            if index > 1, let previous = separators[index - 1], let current = separators[index], !before(previous, current) {
                throw check.damaged("\(where_), entry \(index) is out of key order")
            }
            let childLow = separators[index] ?? low
            let childHigh = index + 1 < separators.count ? separators[index + 1] : high
            try visit(child, level: level + 1, depth: depth, low: childLow, high: childHigh)
        }
    }

    /// A free-list entry: a page count, then that many page numbers inside the file (a record may
    /// have spare slots after them); the pages are noted for `claimFreePages`.
    private mutating func freePages(_ value: [UInt8], at: String) throws {
        guard value.count >= 8, value.count % 8 == 0 else { throw check.damaged("free-list \(at) is \(value.count) bytes") }
        let numbers = value.withUnsafeBytes { raw in (0..<(value.count / 8)).map { raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self) } }
        guard numbers[0] <= UInt64(numbers.count - 1) else { throw check.damaged("free-list \(at) counts \(numbers[0]) pages in \(numbers.count - 1) slots") }
        for number in numbers[1...Int(numbers[0])] where number < UInt64(Layout.metaPages) || number >= UInt64(pageCount) {
            throw check.damaged("free-list \(at) lists page \(number), outside the file's \(pageCount) pages")
        }
        freeList += numbers[1...Int(numbers[0])]
    }
}
