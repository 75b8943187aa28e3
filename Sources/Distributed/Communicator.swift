import CMPI
import Diagnostics
import Foundation

/// The processes of one run and the collective operations data-parallel training needs, over MPI.
///
/// A process started by `mpirun` or `srun` (Open MPI's or PMI's environment variables say so) joins
/// MPI's world on first use; any other process is a world of one, and MPI is never initialised, so
/// the tool runs exactly as without MPI. Errors are returned, not fatal (`MPI_ERRORS_RETURN`), and
/// become `DistributedError`s naming the rank and the operation. A rank that dies makes `mpirun`
/// stop the others: collectives do not wait for it forever.
///
/// Collectives are called by every rank in the same order; the buffers are the caller's.
public final class Communicator: @unchecked Sendable {
    /// This process's rank (0 ..< size) and the number of processes.
    public let rank: Int
    public let size: Int
    /// Whether MPI was initialised (false for a world of one).
    public let usesMPI: Bool
    /// The MPI communicator (nil for a world of one).
    private let communicator: MPI_Comm?

    private init(rank: Int, size: Int, communicator: MPI_Comm?) {
        (self.rank, self.size, self.communicator, usesMPI) = (rank, size, communicator, communicator != nil)
    }

    private var comm: MPI_Comm { communicator! }

    /// Whether this process was started by an MPI launcher (mpirun, mpiexec, srun with PMI).
    public static var launchedByMPI: Bool {
        let environment = ProcessInfo.processInfo.environment
        return ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"].contains { environment[$0] != nil }
    }

    /// The world: every process of the run (one when not launched by MPI).
    public static let world: Communicator = {
        guard launchedByMPI else { return Communicator(rank: 0, size: 1, communicator: nil) }
        // Stages run on threads of their own: collectives come from several threads, each stage
        // on its own duplicate of the world (`duplicate()`).
        var provided: Int32 = 0
        guard MPI_Init_thread(nil, nil, Int32(MPI_THREAD_MULTIPLE), &provided) == MPI_SUCCESS else {
            fatalError("MPI_Init_thread failed: the MPI launcher's environment is broken")
        }
        threadSupport = Int(provided)
        MPI_Comm_set_errhandler(ssmamba_mpi_comm_world(), ssmamba_mpi_errors_return())
        var rank: Int32 = 0, size: Int32 = 1
        MPI_Comm_rank(ssmamba_mpi_comm_world(), &rank)
        MPI_Comm_size(ssmamba_mpi_comm_world(), &size)
        return Communicator(rank: Int(rank), size: Int(size), communicator: ssmamba_mpi_comm_world())
    }()

    /// The thread support MPI gave (MPI_THREAD_MULTIPLE is needed for two training stages at once).
    nonisolated(unsafe) public private(set) static var threadSupport = 0

    /// Whether collectives may be called from several threads at once (each on its own duplicate).
    public static var supportsConcurrentCollectives: Bool { threadSupport >= Int(MPI_THREAD_MULTIPLE) }

    /// A communicator over the same processes whose collectives never mix with this one's: one per
    /// stage that talks to the other ranks. Every rank must duplicate in the same order.
    public func duplicate() throws -> Communicator {
        guard usesMPI else { return self }
        var copy: MPI_Comm? = nil
        try check(MPI_Comm_dup(comm, &copy), "duplicating the communicator")
        MPI_Comm_set_errhandler(copy, ssmamba_mpi_errors_return())
        return Communicator(rank: rank, size: size, communicator: copy)
    }

    /// Whether this rank writes the run's files (checkpoints, pictures, reports): rank 0.
    public var isRoot: Bool { rank == 0 }

    /// Seconds a collective may wait for the other ranks before this rank gives up and stops the
    /// run (`SSMAMBA_MPI_TIMEOUT`, default 900): a rank that hangs rather than dies (a stuck file
    /// system, a node that stopped answering) must not hold the others forever.
    public static var timeout: Double {
        ProcessInfo.processInfo.environment["SSMAMBA_MPI_TIMEOUT"].flatMap(Double.init).map { max(0.1, $0) } ?? 900
    }

    /// Runs one collective, watched (`CollectiveWatch`: past `timeout` seconds it says which
    /// operation stalled and aborts every rank), and turns a failure into a `DistributedError`.
    private func collective(_ what: String, _ body: () -> Int32) throws {
        let ticket = CollectiveWatch.shared.begin(what, rank: rank, size: size)
        let status = body()
        CollectiveWatch.shared.end(ticket)
        try check(status, what)
    }

    // MARK: collectives

    /// Replaces `values` on every rank by their element-wise sum over the ranks.
    public func sum(_ values: UnsafeMutableBufferPointer<Float>) throws {
        guard usesMPI, size > 1, values.count > 0 else { return }
        let what = "summing \(values.count) numbers over the ranks"
        try collective(what) { MPI_Allreduce(ssmamba_mpi_in_place(), values.baseAddress, Int32(values.count), ssmamba_mpi_float(), ssmamba_mpi_sum(), comm) }
    }

    /// The sum of `value` over the ranks.
    public func sum(_ value: Double) throws -> Double {
        guard usesMPI, size > 1 else { return value }
        var input = value, output = 0.0
        try collective("summing a number over the ranks") { MPI_Allreduce(&input, &output, 1, ssmamba_mpi_double(), ssmamba_mpi_sum(), comm) }
        return output
    }

    /// The maximum of `value` over the ranks.
    public func maximum(_ value: Double) throws -> Double {
        guard usesMPI, size > 1 else { return value }
        var input = value, output = 0.0
        try collective("taking a maximum over the ranks") { MPI_Allreduce(&input, &output, 1, ssmamba_mpi_double(), ssmamba_mpi_max(), comm) }
        return output
    }

    /// Rank `root`'s bytes on every rank (their count must agree).
    public func broadcast(_ bytes: inout [UInt8], from root: Int = 0) throws {
        guard usesMPI, size > 1 else { return }
        var count = Int64(bytes.count)
        try collective("broadcasting a length") { MPI_Bcast(&count, 8, ssmamba_mpi_byte(), Int32(root), comm) }
        if rank != root { bytes = [UInt8](repeating: 0, count: Int(count)) }
        try bytes.withUnsafeMutableBytes { raw in
            try collective("broadcasting \(raw.count) bytes") { MPI_Bcast(raw.baseAddress, Int32(raw.count), ssmamba_mpi_byte(), Int32(root), comm) }
        }
    }

    /// Every rank's `bytes`, on every rank, in rank order (the lengths may differ).
    public func allGather(_ bytes: [UInt8]) throws -> [[UInt8]] {
        guard usesMPI, size > 1 else { return [bytes] }
        var length = Int32(bytes.count)
        var lengths = [Int32](repeating: 0, count: size)
        try collective("gathering lengths") { MPI_Allgather(&length, 1, ssmamba_mpi_int(), &lengths, 1, ssmamba_mpi_int(), comm) }
        var offsets = [Int32](repeating: 0, count: size)
        for r in 1..<size { offsets[r] = offsets[r - 1] + lengths[r - 1] }
        var all = [UInt8](repeating: 0, count: Int(lengths.reduce(0, +)))
        var mine = bytes
        try collective("gathering \(bytes.count) bytes") { MPI_Allgatherv(&mine, length, ssmamba_mpi_byte(), &all, lengths, offsets, ssmamba_mpi_byte(), comm) }
        return (0..<size).map { r in Array(all[Int(offsets[r])..<Int(offsets[r] + lengths[r])]) }
    }

    /// Waits until every rank has arrived.
    public func barrier() throws {
        guard usesMPI, size > 1 else { return }
        try collective("waiting for every rank") { MPI_Barrier(comm) }
    }

    /// Ends MPI for this process (after the last collective); a world of one has nothing to end.
    public func finish() {
        guard usesMPI else { return }
        var finalized: Int32 = 0
        MPI_Finalized(&finalized)
        if finalized == 0 { MPI_Finalize() }
    }

    /// Ends every process of the run with `code` (a rank that failed: the others must not wait for
    /// it in a collective). Without MPI it does nothing; the caller exits.
    public func abort(code: Int32) {
        guard usesMPI, size > 1 else { return }
        MPI_Abort(ssmamba_mpi_comm_world(), code)
    }

    private func check(_ status: Int32, _ what: String) throws {
        guard status != MPI_SUCCESS else { return }
        var text = [CChar](repeating: 0, count: Int(MPI_MAX_ERROR_STRING) + 1)
        var length: Int32 = 0
        MPI_Error_string(status, &text, &length)
        let message = String(decoding: text.prefix(Int(max(0, length))).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        throw DistributedError(rank: rank, size: size, operation: what, reason: message)
    }
}

/// A collective that failed (usually another rank died): which rank saw it, doing what.
public struct DistributedError: Problem {
    public let rank: Int, size: Int
    public let operation: String
    public let reason: String

    public var kindName: String { "collectiveFailed" }
    public var subject: String { "rank \(rank) of \(size)" }
    public var message: String { "\(operation) failed (\(reason)); another rank has probably stopped; see its output, then rerun with --resume" }
}

/// The collectives in progress in this process, and one thread that checks their age twice a
/// second (a timer per collective would leave thousands pending over a training run).
private final class CollectiveWatch: @unchecked Sendable {
    static let shared = CollectiveWatch()
    private let lock = NSLock()
    private var running: [Int: (what: String, started: DispatchTime, rank: Int, size: Int)] = [:]
    private var nextTicket = 0
    private var watching = false

    func begin(_ what: String, rank: Int, size: Int) -> Int {
        lock.withLock {
            if !watching {
                watching = true
                let thread = Thread { [self] in watch(limit: Communicator.timeout) }
                thread.start()
            }
            nextTicket += 1
            running[nextTicket] = (what, .now(), rank, size)
            return nextTicket
        }
    }

    func end(_ ticket: Int) { lock.withLock { running[ticket] = nil } }

    private func watch(limit: Double) {
        while true {
            Thread.sleep(forTimeInterval: 0.5)
            let now = DispatchTime.now().uptimeNanoseconds
            let stalled = lock.withLock { running.values.first { Double(now - $0.started.uptimeNanoseconds) * 1e-9 > limit } }
            guard let stalled else { continue }
            FileHandle.standardError.write(Data("rank \(stalled.rank) of \(stalled.size): no answer from the other ranks for \(Int(limit)) s while \(stalled.what) (SSMAMBA_MPI_TIMEOUT); stopping every rank; rerun with --resume\n".utf8))
            MPI_Abort(ssmamba_mpi_comm_world(), 1)
        }
    }
}
