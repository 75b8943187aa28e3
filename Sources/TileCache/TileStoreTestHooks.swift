/// Internals exposed for known-answer tests.
public enum TileStoreTestHooks {
    public static func xxh64(_ bytes: [UInt8]) -> UInt64 { XXHash64.hash(bytes) }
}
