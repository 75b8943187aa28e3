import Distributed
import Flow
import Foundation
import SSMamba

extension Communicator: ProcessGroup {
    public var processes: Int { size }
}

/// Data-parallel training under `mpirun`/`srun`: every rank builds the same model from the same
/// seed and reads its share of every batch, rank r places r·b ..< (r+1)·b of a batch of R·b (the
/// flow's `batch` is the whole batch); the trainer averages the gradients before each step. Rank 0
/// alone writes the run's files. Without a launcher the world is one process and nothing changes.
enum DataParallel {
    static var world: Communicator { Communicator.world }

    /// This rank's share of `plan` (batch k's indices for the whole batch of `batch`), and the
    /// place of its first image in the whole batch.
    static func share(_ plan: @escaping @Sendable (Int) -> [Int], batch: Int, stage: String) throws
        -> (plan: @Sendable (Int) -> [Int], offset: Int) {
        let world = world
        guard world.size > 1 else { return (plan, 0) }
        guard batch % world.size == 0 else {
            throw StageError("'\(stage)': `batch: \(batch)` does not split evenly over \(world.size) processes; make it a multiple of \(world.size) (it is the whole batch, shared out between the processes)")
        }
        let part = batch / world.size, first = world.rank * part
        return ({ k in
            let whole = plan(k)
            return Array(whole[min(first, whole.count)..<min(first + part, whole.count)])
        }, first)
    }

    /// The processes a training (or evaluation) stage talks to: its own duplicate of the world (two
    /// such stages of one flow may run at once), made while the flow is assembled, in the same
    /// order on every rank; nil for one process.
    static func trainingGroup() throws -> Communicator? {
        guard world.size > 1 else { return nil }
        return try world.duplicate()
    }

    /// Every rank's `value`, on every rank, in rank order (a value as JSON through one gather):
    /// what each rank evaluated or embedded, and what failed there.
    static func allGather<Value: Codable>(_ value: Value, group: Communicator) throws -> [Value] {
        try group.allGather(Array(JSONEncoder().encode(value))).map { try JSONDecoder().decode(Value.self, from: Data($0)) }
    }

    /// Each rank's `values`, gathered on every rank (row r is rank r's): for the report's per-rank
    /// figures. One sum over a table whose other rows are zero.
    static func perRank(_ values: [Double], group: Communicator) throws -> [[Double]] {
        var table = [Float](repeating: 0, count: group.size * values.count)
        for (i, value) in values.enumerated() { table[group.rank * values.count + i] = Float(value) }
        try table.withUnsafeMutableBufferPointer { try group.sum($0) }
        return (0..<group.size).map { r in (0..<values.count).map { Double(table[r * values.count + $0]) } }
    }

    /// Records per-rank figures of a training stage as metrics `<stage>.rank<r>.<name>` (rank 0
    /// writes the report): images read, seconds waiting for data, seconds averaging gradients.
    static func recordPerRank(stage: String, group: Communicator?, images: Int, waitedForData: Double, synchronizing: Double,
                              context: StageContext<Never>) throws {
        guard let group else { return }
        let rows = try perRank([Double(images), waitedForData, synchronizing], group: group)
        for (rank, row) in rows.enumerated() {
            context.record(metric: "\(stage).rank\(rank).images", row[0])
            context.record(metric: "\(stage).rank\(rank).waited_for_data_seconds", row[1])
            context.record(metric: "\(stage).rank\(rank).averaging_gradients_seconds", row[2])
        }
    }

    /// The `replicas` parameter of the training stages.
    static let replicasParameter = ParameterSpec(
        "replicas", .integer(1...64), optional: true,
        "copies of the model training side by side in this process, each on its share of every batch and its share of the cores, gradients averaged before every step (default: one per core, at most 8, at most `batch`, and as many as keep the copies' weights, gradients and moments within a quarter of the memory; 1 per process under mpirun/srun)")

    /// A training stage's replicas in this process: `model` and the copies `copy()` makes, each
    /// trained by `trainer(_:)`, summing with the other processes' `group`. How many: `asked`, or
    /// `TrainingReplicas.plan` for `batch` and the model's size. Under mpirun/srun each process
    /// trains one replica unless `replicas` says otherwise (the launcher decides how many
    /// processes share a node, and every process sees all of the node's cores).
    static func replicas<Model: ParameterOwner>(of model: Model, asked: Int?, batch: Int, group: Communicator?, copy: () throws -> Model,
                                                trainer: (Model) -> Trainer<Model>) rethrows -> TrainingReplicas<Model> {
        let plan = TrainingReplicas<Model>.plan(batch: batch, asked: asked ?? (world.size > 1 ? 1 : nil),
                                                replicaBytes: TrainingReplicas<Model>.replicaBytes(parameters: model.parameterCount))
        let copies = try (1..<plan.replicas).map { _ in try copy() }
        return TrainingReplicas(([model] + copies).map(trainer), workersPerReplica: plan.workersPerReplica, outerGroup: group)
    }

    /// Why `flow` cannot run on this world's processes, or nil.
    static func problems(_ flow: FlowFile) -> [FlowFileIssue] {
        guard world.size > 1 else { return [] }
        var issues = flow.stages.filter { StageKinds.named($0.kind.name)?.runsOnSeveralProcesses != true }.map {
            FlowFileIssue(location: $0.location, message: "'\($0.name)' (\($0.kind.name)) does not run on several processes yet (this run has \(world.size)): train under mpirun/srun with a flow of data and training stages, then run this stage in a flow without mpirun")
        }
        let training = flow.stages.filter { StageKinds.named($0.kind.name)?.streamsFromCache == true }
        if training.count > 1 && !Communicator.supportsConcurrentCollectives, let second = training.dropFirst().first {
            issues.append(FlowFileIssue(location: second.location, message: "this MPI library gives no MPI_THREAD_MULTIPLE, so only one training or evaluation stage per flow can run on several processes; split the flow"))
        }
        return issues
    }
}
