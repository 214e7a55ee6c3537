public import CascadeAPI
import CascadeCrypto
import CascadeRPC
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One release being downloaded (or fully staged) under `<state>/downloads`: the artifact file,
/// written chunk by chunk in order after each chunk verified against the signed manifest, and a
/// small progress record (the count of verified chunks), both fsynced. After a restart the
/// record says where to resume; the chunks it covers are hashed again before they are trusted.
///
/// Leaders serve from the same file while it fills: `waitForChunk` suspends until a chunk is
/// verified and on disk, so nothing is ever buffered in memory beyond one chunk.
public final class StagedArtifact: Sendable {
    public let manifest: Manifest
    public let signedManifest: SignedManifest
    /// The artifact file; complete and verified once `isComplete`.
    public let path: String
    private let recordPath: String
    private let fd: Int32
    private let recordFD: Int32
    private let verified: Locked<Int>
    private let changed = ChangeSignal()
    /// Set when whoever fills this file gave up: waiters stop waiting.
    private let abandoned = Locked<String?>(nil)

    init(directory: String, signed: SignedManifest, manifest: Manifest) throws(RuntimeError) {
        self.manifest = manifest
        self.signedManifest = signed
        let base = "\(directory)/\(manifest.version)-\(manifest.sha256.hex.prefix(16))"
        path = base + ".artifact"
        recordPath = base + ".progress"
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw RuntimeError(.io, "cannot open the staging file \(path): \(errnoText())") }
        Self.markInFlight(fd)
        recordFD = open(recordPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard recordFD >= 0 else {
            let text = errnoText()
            close(fd)
            throw RuntimeError(.io, "cannot open the progress record \(recordPath): \(text)")
        }
        // Trust the record only as far as the bytes on disk still verify.
        let claimed = (try? Self.readRecord(recordFD, path: recordPath, chunkCount: manifest.chunkCount)) ?? 0
        verified = Locked((try? Self.recheck(fd, path: path, manifest: manifest, upTo: claimed)) ?? 0)
    }

    deinit {
        close(fd)
        close(recordFD)
    }

    /// An open-file-description lock on the artifact for as long as this process has it open
    /// (the kernel drops it with the process): the agent's prunes (after a switch, and
    /// `cascade-agent gc`) test it and leave a download in flight alone. Best effort: a
    /// download never fails for want of the mark.
    private static func markInFlight(_ fd: Int32) {
        #if os(Linux)
        var request = flock()
        request.l_type = Int16(F_WRLCK)
        request.l_whence = Int16(SEEK_SET)
        let ofdSetLock: Int32 = 37  // F_OFD_SETLK; Glibc exposes it only under _GNU_SOURCE
        _ = fcntl(fd, ofdSetLock, &request)
        #endif
    }

    /// Chunks verified and on disk, from chunk 0.
    public var verifiedChunks: Int { verified.value }
    public var verifiedBytes: UInt64 {
        let count = verifiedChunks
        return count == 0 ? 0 : min(manifest.size, manifest.offset(ofChunk: count))
    }
    public var isComplete: Bool { verifiedChunks == manifest.chunkCount }

    /// Verifies `chunk` against the manifest and, if it is the next one, writes it and the
    /// record durably. Returns false for a chunk already stored (a repeat); throws `ReleaseError`
    /// for a chunk that does not verify or comes out of order, `RuntimeError` for I/O.
    @discardableResult
    func store(_ chunk: Chunk) throws -> Bool {
        let index = Int(chunk.index)
        let next = verifiedChunks
        if index < next { return false }
        guard index == next else {
            throw ReleaseError(.wrongChunkIndex, "expected chunk \(next) of release \(manifest.version), got chunk \(index)")
        }
        try manifest.verifyChunk(index: index, bytes: chunk.data)
        try writeFully(fd, chunk.data, at: manifest.offset(ofChunk: index), path: path)
        try syncData(fd, path: path)
        try writeRecord(index + 1)
        let stored = verified.withLock { count -> Bool in
            guard count == index else { return false }
            count = index + 1
            return true
        }
        if stored { changed.notify() }
        return stored
    }

    /// The bytes of a verified chunk.
    func readChunk(_ index: Int) throws(RuntimeError) -> [UInt8] {
        guard index < verifiedChunks else {
            throw RuntimeError(.io, "chunk \(index) of release \(manifest.version) is not staged yet")
        }
        return try readFully(fd, count: manifest.size(ofChunk: index), at: manifest.offset(ofChunk: index), path: path)
    }

    /// Returns once chunk `index` is verified and on disk; throws CancellationError if cancelled,
    /// and UNAVAILABLE once the fetch filling the file was abandoned (`abandon`).
    func waitForChunk(_ index: Int) async throws {
        while true {
            let seen = changed.generation
            if verifiedChunks > index { return }
            if let reason = abandoned.value {
                throw RPCError(.unavailable, "this leader stopped fetching \(manifest.version): \(reason)")
            }
            try Task.checkCancellation()
            await changed.wait(after: seen)
        }
    }

    /// The fetch filling this file gave up: whoever waits for a chunk is told so at once.
    func abandon(_ reason: String) {
        abandoned.withLock { $0 = reason }
        changed.notify()
    }

    /// Checks the whole file once more (size and SHA-256 of the whole) before it is installed.
    func verifyWhole() throws(ReleaseError) {
        try manifest.verifyFile(atPath: path)
    }

    /// Forgets everything staged (after a whole-file mismatch, which chunk checks make unlikely).
    func reset() {
        verified.withLock { $0 = 0 }
        try? writeRecord(0)
        _ = ftruncate(fd, 0)
    }

    private static func readRecord(_ fd: Int32, path: String, chunkCount: Int) throws(RuntimeError) -> Int {
        let bytes = try readFully(fd, count: 8, at: 0, path: path)
        guard bytes.count == 8 else { return 0 }
        let value = bytes.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return Int(min(value, UInt64(chunkCount)))
    }

    private func writeRecord(_ count: Int) throws(RuntimeError) {
        let value = UInt64(count)
        let bytes = (0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
        try writeFully(recordFD, bytes, at: 0, path: recordPath)
        try syncData(recordFD, path: recordPath)
    }

    /// How many of the first `claimed` chunks on disk still match the manifest.
    private static func recheck(_ fd: Int32, path: String, manifest: Manifest, upTo claimed: Int) throws(RuntimeError) -> Int {
        for index in 0..<claimed {
            let bytes = try readFully(fd, count: manifest.size(ofChunk: index), at: manifest.offset(ofChunk: index), path: path)
            if (try? manifest.verifyChunk(index: index, bytes: bytes)) == nil { return index }
        }
        return claimed
    }
}

/// The staged releases of this agent, one `StagedArtifact` per release, shared by the member
/// download and the leader's fetch-and-serve (an acting leader serves what it staged as a member).
final class StagingArea: Sendable {
    let directory: String
    private let artifacts = Locked<[SHA256Digest: StagedArtifact]>([:])

    init(stateDirectory: String) throws(RuntimeError) {
        directory = "\(stateDirectory)/downloads"
        try makeDirectories(directory)
    }

    func artifact(for signed: SignedManifest, manifest: Manifest) throws(RuntimeError) -> StagedArtifact {
        if let known = artifacts.withLock({ $0[manifest.sha256] }) { return known }
        let made = try StagedArtifact(directory: directory, signed: signed, manifest: manifest)
        return artifacts.withLock { table in
            if let raced = table[manifest.sha256] { return raced }
            table[manifest.sha256] = made
            return made
        }
    }

    func existing(version: String, sha256: SHA256Digest?) -> StagedArtifact? {
        artifacts.withLock { table in
            table.values.first { $0.manifest.version == version && (sha256 == nil || $0.manifest.sha256 == sha256) }
        }
    }
}
