#if canImport(Glibc)
import Glibc
#endif
public import CascadeCrypto

/// Content-addressed artifact files under `<data>/blobs`:
///
/// - `sha256/<hex>`: complete blobs, named by the SHA-256 of their content, never modified.
///   A blob appears only whole: written to `sha256/.tmp-*`, fsynced, renamed, and the directory
///   fsynced, so a crash leaves either no file or the complete one (stale temp files are removed
///   when the store opens).
/// - `partial/<hex>`: a release being pushed, written chunk by chunk at its offsets (each chunk
///   fsynced before the database records it, see `CoordinatorStore.storeChunk`), keyed by the
///   manifest's whole-file digest so a resumed push finds it.
///
/// All methods block on disk: call them off event-loop threads. The struct holds only paths, so
/// it is freely shareable; concurrent writers of the same partial write identical bytes.
public struct BlobStore: Sendable {
    public let root: String
    private var complete: String { "\(root)/sha256" }
    private var partial: String { "\(root)/partial" }
    static let temporaryPrefix = ".tmp-"

    /// Opens (creating) `<dataDirectory>/blobs` and removes temp files a crash left behind.
    public init(dataDirectory: String) throws(StoreError) {
        root = "\(dataDirectory)/blobs"
        try FileIO.makeDirectories(complete)
        try FileIO.makeDirectories(partial)
        for name in temporaryFiles() { unlink("\(complete)/\(name)") }
    }

    public func path(of digest: SHA256Digest) -> String { "\(complete)/\(digest.hex)" }
    public func partialPath(of digest: SHA256Digest) -> String { "\(partial)/\(digest.hex)" }

    public func contains(_ digest: SHA256Digest) -> Bool { FileIO.size(path(of: digest)) != nil }

    /// The byte size of a complete blob.
    public func size(of digest: SHA256Digest) throws(StoreError) -> Int64 {
        guard let size = FileIO.size(path(of: digest)) else { throw StoreError(.notFound, "no blob \(digest.hex)") }
        return size
    }

    /// Names of leftover temp files (a crashed write's); empty after `init`.
    public func temporaryFiles() -> [String] {
        FileIO.list(complete).filter { $0.hasPrefix(Self.temporaryPrefix) }
    }

    /// Stores `bytes` whole and returns their digest; an existing blob is kept as it is.
    @discardableResult
    public func put(_ bytes: [UInt8]) throws(StoreError) -> SHA256Digest {
        let digest = CascadeCrypto.SHA256.hash(bytes)
        if contains(digest) { return digest }
        let temporary = "\(complete)/\(Self.temporaryPrefix)\(Hex.encode(SecureRandom.bytes(8)))"
        let fd = try FileIO.open(temporary, O_WRONLY | O_CREAT | O_EXCL)
        var committed = false
        defer {
            close(fd)
            if !committed { unlink(temporary) }
        }
        try FileIO.writeAll(fd, bytes, at: 0, path: temporary)
        try FileIO.sync(fd, path: temporary)
        try FileIO.rename(temporary, path(of: digest))
        committed = true
        try FileIO.syncDirectory(complete)
        return digest
    }

    /// Reads `length` bytes at `offset` of a complete blob (fewer only at its end).
    public func read(_ digest: SHA256Digest, offset: Int64, length: Int) throws(StoreError) -> [UInt8] {
        let file = try open(digest)
        return try file.read(offset: offset, length: length)
    }

    /// Opens a complete blob for repeated range reads (serving chunks).
    public func open(_ digest: SHA256Digest) throws(StoreError) -> BlobFile {
        let path = path(of: digest)
        guard FileIO.size(path) != nil else { throw StoreError(.notFound, "no blob \(digest.hex)") }
        return try BlobFile(path: path, digest: digest)
    }

    /// Re-hashes a complete blob; throws `.corrupt` if its content no longer matches its name.
    public func verify(_ digest: SHA256Digest) throws(StoreError) {
        let actual = try Self.hash(file: path(of: digest))
        guard actual == digest else {
            throw StoreError(.corrupt, "blob \(digest.hex) is corrupt: its content hashes to \(actual.hex)")
        }
    }

    /// Moves a complete blob that failed verification back to its partial place, where a re-push
    /// writes the bad chunks over it (the good ones stay). No error if there is none.
    public func demote(_ digest: SHA256Digest) throws(StoreError) {
        let source = path(of: digest)
        guard FileIO.size(source) != nil else { return }
        try FileIO.rename(source, partialPath(of: digest))
        try FileIO.syncDirectory(complete)
        try FileIO.syncDirectory(partial)
    }

    /// Deletes a complete blob (no error if it is absent).
    public func remove(_ digest: SHA256Digest) throws(StoreError) {
        if unlink(path(of: digest)) != 0 && errno != ENOENT { throw FileIO.failure("unlink", path(of: digest)) }
        try FileIO.syncDirectory(complete)
    }

    // MARK: - Partial blobs (resumable pushes)

    /// Writes `bytes` at `offset` of the partial blob for `digest` and fsyncs them.
    public func writePartial(_ digest: SHA256Digest, at offset: Int64, bytes: [UInt8]) throws(StoreError) {
        let path = partialPath(of: digest)
        let isNew = FileIO.size(path) == nil
        let fd = try FileIO.open(path, O_WRONLY | O_CREAT)
        defer { close(fd) }
        try FileIO.writeAll(fd, bytes, at: offset, path: path)
        try FileIO.sync(fd, path: path)
        // The first chunk also makes the file's name durable.
        if isNew { try FileIO.syncDirectory(partial) }
    }

    /// Reads from a partial blob (a leader may serve chunks of a release still arriving).
    public func readPartial(_ digest: SHA256Digest, offset: Int64, length: Int) throws(StoreError) -> [UInt8] {
        let path = partialPath(of: digest)
        let fd = try FileIO.open(path, O_RDONLY)
        defer { close(fd) }
        return try FileIO.read(fd, count: length, at: offset, path: path)
    }

    /// Verifies the partial blob (exact size and digest), then moves it to its content address
    /// and fsyncs both directories. If the complete blob already exists (a crash after the
    /// rename, or the same content under another version) the partial one is simply dropped.
    /// Throws `.corrupt` on a size or digest mismatch, leaving the partial file for the caller.
    public func commitPartial(_ digest: SHA256Digest, size: Int64) throws(StoreError) {
        let source = partialPath(of: digest)
        if contains(digest) {
            removePartial(digest)
            return
        }
        guard let actualSize = FileIO.size(source) else {
            if size == 0 {
                try put([])
                return
            }
            throw StoreError(.notFound, "no partial blob \(digest.hex) to commit")
        }
        guard actualSize == size else {
            throw StoreError(.corrupt, "partial blob \(digest.hex) is \(actualSize) bytes; the manifest says \(size)")
        }
        let actual = try Self.hash(file: source)
        guard actual == digest else {
            throw StoreError(.corrupt, "partial blob \(digest.hex) hashes to \(actual.hex); the manifest says \(digest.hex)")
        }
        try FileIO.rename(source, path(of: digest))
        try FileIO.syncDirectory(complete)
        try FileIO.syncDirectory(partial)
    }

    /// Deletes a partial blob (no error if it is absent).
    public func removePartial(_ digest: SHA256Digest) {
        unlink(partialPath(of: digest))
    }

    static func hash(file path: String) throws(StoreError) -> SHA256Digest {
        let fd = try FileIO.open(path, O_RDONLY)
        defer { close(fd) }
        let hasher = CascadeCrypto.SHA256()
        var offset: Int64 = 0
        while true {
            let block = try FileIO.read(fd, count: 1 << 20, at: offset, path: path)
            if block.isEmpty { break }
            hasher.update(block)
            offset += Int64(block.count)
        }
        return hasher.finalize()
    }
}

/// An open complete blob for range reads. `pread` needs no shared file position, so one
/// instance may serve many concurrent readers; the descriptor closes when it is released.
public final class BlobFile: Sendable {
    public let digest: SHA256Digest
    public let size: Int64
    private let path: String
    private let fd: Int32

    init(path: String, digest: SHA256Digest) throws(StoreError) {
        let fd = try FileIO.open(path, O_RDONLY)
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let error = FileIO.failure("fstat", path)
            close(fd)
            throw error
        }
        self.path = path
        self.digest = digest
        self.size = Int64(info.st_size)
        self.fd = fd
    }

    deinit {
        close(fd)
    }

    /// Up to `length` bytes at `offset` (fewer only at the end); an offset past the end is an error.
    public func read(offset: Int64, length: Int) throws(StoreError) -> [UInt8] {
        guard offset >= 0, length >= 0, offset <= size else {
            throw StoreError(.invalidArgument, "range \(offset)+\(length) is outside blob \(digest.hex) of \(size) bytes")
        }
        return try FileIO.read(fd, count: length, at: offset, path: path)
    }
}
