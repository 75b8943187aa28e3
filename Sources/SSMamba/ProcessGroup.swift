/// Processes training one model together (data-parallel training): each takes its share of every
/// batch, and their gradients are averaged before every optimizer step. The trainer needs only a
/// sum over the processes; `Distributed.Communicator` provides it over MPI.
public protocol ProcessGroup: AnyObject, Sendable {
    /// How many processes train together.
    var processes: Int { get }
    /// Replaces `values` on every process by their element-wise sum over the processes.
    func sum(_ values: UnsafeMutableBufferPointer<Float>) throws
}
