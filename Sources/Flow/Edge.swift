/// The typed output of a source or stage, to be consumed by exactly one next step
/// (use `FlowGraph.fanOut` to feed several).
public final class Edge<Element: Sendable>: @unchecked Sendable {
    /// The producing step's name.
    public let producer: String
    let channel: BoundedChannel<Element>
    var consumers: [String] = []

    init(producer: String, capacity: Int, producers: Int = 1) {
        self.producer = producer
        self.channel = BoundedChannel(capacity: capacity, producers: producers)
    }
}
