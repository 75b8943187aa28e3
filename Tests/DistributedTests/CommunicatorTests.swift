import Distributed
import Foundation
import XCTest

/// The communicator over a real `mpirun` with two ranks (this test bundle, run by mpirun as the
/// ranks and filtered to `testRank`), and as a world of one without it.
final class CommunicatorTests: XCTestCase {
    static let childVariable = "SSMAMBA_MPI_CHILD"

    /// The rank half: collectives against known answers, written to a file per rank; with
    /// `die`, rank 1 exits before the collective and rank 0 must not wait for it forever.
    func testRank() throws {
        guard let mode = ProcessInfo.processInfo.environment[Self.childVariable] else {
            throw XCTSkip("runs only as a rank under mpirun, started by testTwoRanksUnderMPIRun")
        }
        let world = Communicator.world
        let folder = URL(fileURLWithPath: ProcessInfo.processInfo.environment["SSMAMBA_MPI_OUT"]!)
        if mode == "die" && world.rank == 1 { exit(3) }
        if mode == "hang" && world.rank == 1 { sleep(60) }
        var values = (0..<1000).map { Float($0 * (world.rank + 1)) }
        try values.withUnsafeMutableBufferPointer { try world.sum($0) }
        let total = try world.sum(Double(world.rank + 1))
        let largest = try world.maximum(Double(world.rank * 10))
        var message = world.rank == 0 ? Array("from rank 0".utf8) : []
        try world.broadcast(&message)
        try world.barrier()
        let line = "\(world.rank) \(world.size) \(values[999]) \(total) \(largest) \(String(decoding: message, as: UTF8.self))\n"
        try line.write(to: folder.appendingPathComponent("rank-\(world.rank).txt"), atomically: true, encoding: .utf8)
        world.finish()
    }

    func run(ranks: Int, mode: String, folder: URL, timeout: Double = 900) throws -> (status: Int32, seconds: Double) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["mpirun", "--oversubscribe", "-np", "\(ranks)", CommandLine.arguments[0], "DistributedTests.CommunicatorTests/testRank"]
        process.environment = ProcessInfo.processInfo.environment.merging([
            Self.childVariable: mode, "SSMAMBA_MPI_OUT": folder.path, "SSMAMBA_MPI_TIMEOUT": "\(timeout)",
            // Containers and CI run as root, which Open MPI refuses unless told; and it needs a
            // remote launcher on the PATH even for local ranks (`false` is never called for them).
            "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1", "OMPI_MCA_plm_rsh_agent": "false",
        ]) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        let started = Date()
        try process.run()
        process.waitUntilExit()
        return (process.terminationStatus, Date().timeIntervalSince(started))
    }

    func testTwoRanksUnderMPIRun() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mpi-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let good = try run(ranks: 2, mode: "collectives", folder: folder)
        XCTAssertEqual(good.status, 0)
        for rank in 0..<2 {
            let line = try String(contentsOf: folder.appendingPathComponent("rank-\(rank).txt"), encoding: .utf8)
            // 999·1 + 999·2 = 2997; 1 + 2 = 3; max(0, 10) = 10; rank 0's message everywhere.
            XCTAssertEqual(line, "\(rank) 2 2997.0 3.0 10.0 from rank 0\n")
        }
        // Rank 1 dies before the collective: mpirun stops rank 0 too and reports the failure.
        let dead = try run(ranks: 2, mode: "die", folder: folder)
        XCTAssertNotEqual(dead.status, 0)
        XCTAssertLessThan(dead.seconds, 120, "the surviving rank waited for the dead one")
        // Rank 1 hangs (alive, never arriving): rank 0's collective gives up after the timeout and
        // stops every rank, well before the hanging rank would have woken.
        let hung = try run(ranks: 2, mode: "hang", folder: folder, timeout: 2)
        XCTAssertNotEqual(hung.status, 0)
        XCTAssertLessThan(hung.seconds, 30, "the collective waited past its timeout")
    }

    /// Without a launcher: a world of one, MPI never initialised, collectives are identities.
    func testAWorldOfOneWithoutMPIRun() throws {
        guard !Communicator.launchedByMPI else { throw XCTSkip("running under mpirun") }
        let world = Communicator.world
        XCTAssertEqual([world.rank, world.size], [0, 1])
        XCTAssertFalse(world.usesMPI)
        var values: [Float] = [1, 2, 3]
        try values.withUnsafeMutableBufferPointer { try world.sum($0) }
        XCTAssertEqual(values, [1, 2, 3])
        XCTAssertEqual(try world.sum(4.5), 4.5)
    }
}
