import CascadeCrypto
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Builds a manifest from a file, reading it one chunk at a time (an artifact may be far
/// larger than memory should hold). `cascadectl release create` signs the result.
public struct ManifestBuilder: Sendable {
    public var chunkSize: UInt32

    public init(chunkSize: UInt32 = APILimits.defaultChunkSize) {
        self.chunkSize = chunkSize
    }

    /// The manifest of the file at `path`; `createdAt` is unix seconds (default: now).
    /// The key id is filled in by `SignedManifest.sign`.
    public func build(fileAt path: String, name: String, version: String, createdAt: UInt64? = nil) throws(ReleaseError) -> Manifest {
        _ = try ReleaseVersion(version)
        guard !name.isEmpty else { throw ReleaseError(.inconsistentManifest, "a release needs a name") }
        guard chunkSize > 0 && chunkSize <= APILimits.maxChunkSize else {
            throw ReleaseError(.inconsistentManifest, "chunk size \(chunkSize) is outside 1...\(APILimits.maxChunkSize)")
        }
        let file = try ChunkFile(path: path, chunkSize: Int(chunkSize))
        let needed = Manifest.chunks(size: file.size, chunkSize: chunkSize)
        guard needed <= UInt64(APILimits.maxChunkCount) else {
            throw ReleaseError(.inconsistentManifest,
                "\(path) (\(file.size) bytes) needs \(needed) chunks of \(chunkSize) bytes, more than the limit of \(APILimits.maxChunkCount); use larger chunks")
        }
        let whole = SHA256(), each = SHA256()
        var hashes: [SHA256Digest] = []
        hashes.reserveCapacity(Int(needed))
        var total: UInt64 = 0
        while let chunk = try file.nextChunk() {
            whole.update(chunk)
            each.update(chunk)
            hashes.append(each.finalize())
            total += UInt64(chunk.count)
        }
        guard total == file.size else {
            throw ReleaseError(.io, "\(path) changed size while it was read (\(file.size) bytes, then \(total))")
        }
        return Manifest(name: name, version: version, size: total, chunkSize: chunkSize, chunkHashes: hashes,
                        sha256: whole.finalize(), createdAt: createdAt ?? UInt64(max(0, time(nil))))
    }
}

/// A file read in fixed-size chunks with plain POSIX calls; closes itself.
final class ChunkFile {
    let path: String
    let size: UInt64
    private let fd: Int32
    private let chunkSize: Int

    init(path: String, chunkSize: Int) throws(ReleaseError) {
        precondition(chunkSize > 0, "chunk size must be positive")
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ReleaseError(.io, "cannot open \(path): \(Self.errorText())") }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let text = Self.errorText()
            close(fd)
            throw ReleaseError(.io, "cannot stat \(path): \(text)")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw ReleaseError(.io, "\(path) is not a regular file")
        }
        self.path = path
        self.fd = fd
        self.size = UInt64(info.st_size)
        self.chunkSize = chunkSize
    }

    deinit { close(fd) }

    /// The next chunk (shorter only at the end of the file), or nil at the end.
    func nextChunk() throws(ReleaseError) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: chunkSize)
        var filled = 0
        while filled < chunkSize {
            let n = buffer.withUnsafeMutableBytes { raw in
                read(fd, raw.baseAddress! + filled, chunkSize - filled)
            }
            if n == 0 { break }
            if n < 0 {
                if errno == EINTR { continue }
                throw ReleaseError(.io, "reading \(path) failed: \(Self.errorText())")
            }
            filled += n
        }
        guard filled > 0 else { return nil }
        buffer.removeLast(chunkSize - filled)
        return buffer
    }

    private static func errorText() -> String { String(cString: strerror(errno)) }
}
