@testable import CascadeStore
import CascadeCrypto
import CascadeTestSupport
import Synchronization

/// A clock the test moves by hand, so deadlines and liveness are exact.
final class ManualClock: Sendable {
    private let now = Mutex<Int64>(1_700_000_000_000)

    var timestamp: Timestamp { Timestamp(milliseconds: now.withLock { $0 }) }

    func advance(_ duration: Duration) {
        now.withLock { $0 += duration.wholeMilliseconds }
    }

    var function: @Sendable () -> Timestamp { { [self] in self.timestamp } }
}

/// A store in a fresh temporary directory with a manual clock.
struct StoreFixture {
    let directory: TemporaryDirectory
    let clock = ManualClock()
    let store: CoordinatorStore

    init(configuration: StoreConfiguration = StoreConfiguration()) throws {
        directory = try TemporaryDirectory(prefix: "cascade-store")
        store = try CoordinatorStore(dataDirectory: directory.path, configuration: configuration, clock: clock.function)
    }

    @discardableResult
    func register(
        _ id: String, _ address: String, cpu: Double = 0.5, memory: Double = 0.5, version: String = "1.0.0"
    ) throws -> AgentAssignment {
        try store.registerAgent(AgentRegistration(
            id: id, address: address, port: 7000, mainVersion: version, upgraderVersion: version, cpuIdle: cpu, memoryIdle: memory))
    }

    /// A complete release with `size` bytes of a repeating pattern, pushed through the blob store.
    @discardableResult
    func pushRelease(_ version: String, size: Int = 10, chunkSize: Int = 4, blobs: BlobStore? = nil) throws -> ReleaseRecord {
        let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ version.utf8.count) }
        let release = NewRelease(
            version: version, name: "cascade-agent", manifest: Array("manifest \(version)".utf8), signature: [1, 2, 3],
            keyID: "0011223344556677", blobDigest: CascadeCrypto.SHA256.hash(bytes), size: Int64(size), chunkSize: chunkSize,
            chunkCount: (size + chunkSize - 1) / chunkSize, createdAt: clock.timestamp)
        let blobs = try blobs ?? BlobStore(dataDirectory: directory.path)
        try store.createRelease(release, actor: .operator("alice"))
        for index in 0..<release.chunkCount {
            let start = index * chunkSize
            try store.storeChunk(version: version, index: index, bytes: Array(bytes[start..<min(size, start + chunkSize)]), blobs: blobs)
        }
        return try store.finishRelease(version: version, blobs: blobs, actor: .operator("alice"))
    }

    /// The detail strings of every event of `kind`, oldest first.
    func eventDetails(_ kind: EventKind) throws -> [String] {
        try store.events(kind: kind).map(\.detail)
    }
}
