import CascadeAPI
import CascadeNet
import CascadeRPC

/// Where chunks come from: the coordinator, or a leader (the RPC client for its address).
struct ChunkSource: Sendable {
    enum Kind: Sendable, Hashable {
        case coordinator
        case leader(id: String, epoch: UInt64)
    }

    let kind: Kind
    let client: RPCClient

    /// The id a fault report names ("" for the coordinator).
    var sourceID: String {
        if case .leader(let id, _) = kind { return id }
        return ""
    }

    var isLeader: Bool { sourceID != "" }
}

/// A chunk that failed its check against the signed manifest: discarded, never stored.
struct ChunkFault: Error, CustomStringConvertible {
    let index: UInt32
    let source: ChunkSource.Kind
    let reason: ReleaseError

    var description: String { "chunk \(index) from \(source) failed its check: \(reason)" }
}

/// Streams the chunks a staged artifact still lacks from one source, verifying and storing
/// each before asking for more (the RPC layer's flow control keeps the source in step).
enum ChunkDownloader {
    /// Fetches from the artifact's first missing chunk to the end. Throws `ChunkFault` for a
    /// bad chunk, `RuntimeError(.wrongPeer)` for a leader presenting another id, and whatever
    /// the call failed with otherwise. `received` gets the size of each stored chunk.
    static func fetch(
        into artifact: StagedArtifact, from source: ChunkSource, options: CallOptions,
        received: @Sendable (Int) -> Void
    ) async throws {
        guard !artifact.isComplete else { return }
        let manifest = artifact.manifest
        let method = source.isLeader ? LeaderService.fetchChunks : CoordinatorService.fetchChunks
        let request = FetchChunksRequest(
            version: manifest.version, artifactSHA256: manifest.sha256, firstIndex: UInt32(artifact.verifiedChunks))
        let connection = try await source.client.connection()
        if case .leader(let id, _) = source.kind, connection.peer?.id != id {
            throw RuntimeError(.wrongPeer, "the leader at \(source.client.target) is \(connection.peer.map { "\($0)" } ?? "anonymous"), not agent \(id)")
        }
        try await connection.serverStreaming(method, request, options: options) { chunks in
            for try await chunk in chunks {
                do {
                    if try artifact.store(chunk) { received(chunk.data.count) }
                } catch let error as ReleaseError {
                    throw ChunkFault(index: chunk.index, source: source.kind, reason: error)
                }
                if artifact.isComplete { return }
            }
        }
        guard artifact.isComplete else {
            throw RuntimeError(.io, "\(source.client.target) ended the transfer of \(manifest.version) after chunk \(artifact.verifiedChunks) of \(manifest.chunkCount)")
        }
    }
}

extension CallOptions {
    /// Metadata naming the leader epoch a member acts under, for the leader's epoch check.
    static func epoch(_ epoch: UInt64, timeout: Duration? = nil) -> CallOptions {
        CallOptions(timeout: timeout, metadata: [MetadataEntry(LeaderEpochMetadata.key, Array(String(epoch).utf8))])
    }
}

enum LeaderEpochMetadata {
    static let key = "leader-epoch"  // not "cascade-…": those keys are reserved (rpc.md §5)

    static func value(in metadata: [MetadataEntry]) -> UInt64? {
        metadata.first { $0.key == key }.flatMap { UInt64(String(decoding: $0.value, as: UTF8.self)) }
    }
}
