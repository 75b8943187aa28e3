import Foundation
import Randomness
import Tensors

/// Copies of one model training side by side in this process, data-parallel over threads: each
/// replica has its own model, activations and optimizer, runs on a thread of its own with
/// `workersPerReplica` cores for its kernels, and computes the gradient of its contiguous share of
/// every batch; the replicas average their gradients (a `ReplicaGroup`) before each optimizer step.
/// Every replica then takes the same step from the same bits, so the copies stay identical, and
/// the run equals, up to the order of the sums, one model trained on the whole batch (a sample's
/// random draws follow its place in the batch, `RandomGenerator.perSample`).
///
/// Why: on a CPU, kernels that each run on one core over part of the batch beat every layer split
/// over all cores (no hand-over between layers). ssmamba_tiny, batch 8, 2 cores: see README.
///
/// `trainers[0]` is the one to checkpoint, evaluate and read; the others follow it.
public final class TrainingReplicas<Model: ParameterOwner> {
    public let trainers: [Trainer<Model>]
    public let workersPerReplica: Int
    private let group: ReplicaGroup?
    private let threads: SideBySide
    /// The place of this process's first sample in the whole batch (MPI data-parallel training).
    public var sampleOffset = 0

    /// How many replicas to train a batch of `batch` with on `cores` cores, and the cores of each:
    /// one replica per core (at least one sample each), at most `maximumReplicas`, and only as many
    /// as keep the copies' own state (`replicaBytes` each: weights, gradients, moments) within a
    /// quarter of `memory`; the cores are shared out evenly. Measured on 2 cores only (README
    /// "Thread plan"). `asked` replicas, when given, share the cores the same way.
    public static func plan(batch: Int, cores: Int = ProcessInfo.processInfo.activeProcessorCount, asked: Int? = nil,
                            replicaBytes: Int = 0, memory: UInt64 = ProcessInfo.processInfo.physicalMemory) -> (replicas: Int, workersPerReplica: Int) {
        let fitting = replicaBytes > 0 ? Int(min(memory / 4 / UInt64(replicaBytes), UInt64(maximumReplicas))) : maximumReplicas
        let replicas = asked ?? max(1, min(cores, batch, fitting))
        return (replicas, max(1, cores / replicas))
    }

    /// What a replica holds of its own for a model of `parameters` float32 parameters: weights,
    /// gradients and AdamW's two moments.
    public static func replicaBytes(parameters: Int) -> Int { 16 * parameters }

    /// The most replicas `plan` chooses: each holds a copy of the weights, gradients and moments.
    public static var maximumReplicas: Int { 8 }

    /// - Parameters:
    ///   - trainers: one per replica, over models of one configuration with the same settings;
    ///     the others' weights are set to replica 0's (a single trainer trains alone, on the
    ///     calling thread, as before).
    ///   - workersPerReplica: the cores each replica's kernels split over.
    ///   - outerGroup: the processes (MPI) this process trains with: the replicas' sum is summed
    ///     with theirs (`ReplicaGroup`).
    public init(_ trainers: [Trainer<Model>], workersPerReplica: Int = 1, outerGroup: ProcessGroup? = nil) {
        precondition(!trainers.isEmpty, "at least one replica")
        self.trainers = trainers
        self.workersPerReplica = max(1, workersPerReplica)
        for trainer in trainers.dropFirst() {
            for (mine, theirs) in zip(trainer.model.parameters, trainers[0].model.parameters) { mine.value = theirs.value }
        }
        threads = SideBySide(trainers.count)
        if trainers.count > 1 {
            let group = ReplicaGroup(replicas: trainers.count, outer: outerGroup)
            for (index, trainer) in trainers.enumerated() { trainer.group = group.member(index) }
            self.group = group
        } else {
            trainers[0].group = outerGroup
            self.group = nil
        }
    }

    deinit { threads.stop() }

    public var main: Trainer<Model> { trainers[0] }
    public var count: Int { trainers.count }
    public var learningRate: Float { main.learningRate }
    /// Seconds the replicas (or processes) spent averaging gradients, waiting for the slowest included.
    public var synchronizationSeconds: Double { main.synchronizationSeconds }

    /// Replica `replica`'s share of a batch of `samples`: contiguous, sizes differing by at most one.
    public func share(_ replica: Int, of samples: Int) -> Range<Int> {
        (samples * replica / count)..<(samples * (replica + 1) / count)
    }

    /// One micro-batch of `samples` images: `body(replica, range, &rng, scale)` runs replica
    /// `replica`'s forward, loss and backward on samples `range` of the batch, with its model
    /// `trainers[replica].model`, and returns the mean loss over them (the `Trainer.step` contract).
    /// Replicas run at the same time on their own threads; the returned loss is the mean over the
    /// whole batch. A replica's error (e.g. a loss that is not finite) ends every replica's step
    /// before any weight changes, and is thrown.
    @discardableResult
    public func step(samples: Int, _ body: (Int, Range<Int>, inout RandomGenerator, Float) throws -> Float) throws -> Float {
        guard let group, count > 1 else {
            main.sampleOffset = sampleOffset
            return try main.step(samples: samples) { rng, scale in try body(0, 0..<samples, &rng, scale) }
        }
        let outcomes = Outcomes(count)
        withoutActuallyEscaping(body) { body in
            let shared = Shared(replicas: self, body: body, outcomes: outcomes)
            defer { shared.body = nil }  // the threads may outlive the step a moment; the body must not
            threads.run { replica in
                let range = shared.replicas.share(replica, of: samples)
                let trainer = shared.replicas.trainers[replica]
                trainer.sampleOffset = shared.replicas.sampleOffset + range.lowerBound
                do {
                    let stepLoss = try BLAS.withWorkers(shared.replicas.workersPerReplica) {
                        try trainer.step(samples: range.count) { rng, scale in
                            let loss = try shared.body!(replica, range, &rng, scale)
                            shared.outcomes.losses[replica] = loss
                            return loss
                        }
                    }
                    if replica == 0 { shared.outcomes.processesLoss = stepLoss }
                } catch {
                    shared.outcomes.errors[replica] = error
                    group.abandon()
                }
            }
        }
        // The error of the replica that failed, not the others' "another replica failed".
        let errors = (0..<count).compactMap { outcomes.errors[$0] }
        if let error = errors.first(where: { !($0 is ReplicaGroup.Abandoned) }) ?? errors.first { throw error }
        // A replica without samples drew nothing: every replica continues from the draws of the
        // last one, which has a sample whenever the batch has one.
        for trainer in trainers.dropLast() { trainer.rng = trainers[count - 1].rng }
        // Under MPI, what a trainer returns there (its mean over every process at an optimizer step).
        if group.outer != nil { return outcomes.processesLoss }
        // The mean loss over this micro-batch's samples (the trainers return their own shares').
        guard samples > 0 else { return 0 }
        return (0..<count).reduce(Float(0)) { $0 + outcomes.losses[$1] * Float(share($1, of: samples).count) } / Float(samples)
    }

    /// Each replica's loss and error, one slot per replica (each thread writes only its own).
    private final class Outcomes: @unchecked Sendable {
        let losses: UnsafeMutablePointer<Float>
        let errors: UnsafeMutablePointer<(any Error)?>
        /// What replica 0's trainer returned (written by replica 0 only).
        var processesLoss: Float = 0
        init(_ count: Int) {
            losses = .allocate(capacity: count)
            losses.initialize(repeating: 0, count: count)
            errors = .allocate(capacity: count)
            errors.initialize(repeating: nil, count: count)
            self.count = count
        }
        private let count: Int
        deinit {
            errors.deinitialize(count: count)
            errors.deallocate()
            losses.deallocate()
        }
    }

    /// What the replica threads share: the replicas, the caller's body (only during the step)
    /// and the outcomes.
    private final class Shared: @unchecked Sendable {
        let replicas: TrainingReplicas
        var body: ((Int, Range<Int>, inout RandomGenerator, Float) throws -> Float)?
        let outcomes: Outcomes
        init(replicas: TrainingReplicas, body: @escaping (Int, Range<Int>, inout RandomGenerator, Float) throws -> Float, outcomes: Outcomes) {
            (self.replicas, self.body, self.outcomes) = (replicas, body, outcomes)
        }
    }

    /// Copies replica 0's state (weights, moments, counters, random generator) into the others:
    /// after `main` was restored from a checkpoint.
    public func synchronizeFromMain(config: ModelConfiguration) throws {
        guard count > 1 else { return }
        let state = main.checkpoint(config: config)
        for trainer in trainers.dropFirst() { try trainer.restore(from: state, source: "replica 0") }
    }
}

extension TrainingReplicas where Model == Classifier {
    /// One micro-batch of supervised classification (`Trainer.step(images:labels:)`), shared out.
    @discardableResult
    public func step(images: Tensor, labels: [Int]) throws -> Float {
        let smoothing = main.settings.labelSmoothing
        return try step(samples: labels.count) { replica, range, rng, scale in
            Trainer.classify(trainers[replica].model, images.samples(range), Array(labels[range]), smoothing: smoothing, rng: &rng, scale: scale)
        }
    }
}

/// `count` threads that run one body at the same time, `body(0)` on the caller's thread and
/// `body(i)` on thread i, and return when all have finished. Dedicated threads, not Dispatch's
/// pool: the bodies wait for one another (`ReplicaGroup`), which needs every one of them running
/// at once. The threads live as long as the replicas, so each keeps its own malloc arena (threads
/// made per step took arenas at random and grew every one of them to a replica's working set).
final class SideBySide: @unchecked Sendable {
    let count: Int
    private let condition = NSCondition()
    private var job: (@Sendable (Int) -> Void)?
    private var round = 0, finished = 0
    private var stopping = false

    init(_ count: Int) {
        self.count = max(1, count)
        for index in 1..<self.count {
            let thread = Thread { [self] in serve(index) }
            thread.stackSize = 8 << 20
            thread.start()
        }
    }

    /// Runs `body(i)` for every i in 0..<count at once; returns when every call has returned.
    func run(_ body: @escaping @Sendable (Int) -> Void) {
        condition.lock()
        job = body
        round += 1
        finished = 0
        condition.broadcast()
        condition.unlock()
        body(0)
        condition.lock()
        while finished < count - 1 { condition.wait() }
        job = nil
        condition.unlock()
    }

    /// Ends the threads (after the round that runs, if any).
    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
    }

    private func serve(_ index: Int) {
        var seen = 0
        while true {
            condition.lock()
            while round == seen && !stopping { condition.wait() }
            if stopping { condition.unlock(); return }
            seen = round
            let body = job!
            condition.unlock()
            body(index)
            condition.lock()
            finished += 1
            condition.broadcast()
            condition.unlock()
        }
    }
}
