#if canImport(Glibc)
import Glibc
#endif
@testable import CascadeStore
import CascadeCrypto
import CascadeTestSupport
import Testing

@Suite("Content-addressed blob store")
struct BlobStoreTests {
    let directory: TemporaryDirectory
    let blobs: BlobStore

    init() throws {
        directory = try TemporaryDirectory(prefix: "cascade-blobs")
        blobs = try BlobStore(dataDirectory: directory.path)
    }

    @Test("a blob is stored under its SHA-256, readable by range, with no temp file left")
    func putAndRead() throws {
        let bytes = (0..<5000).map { UInt8(truncatingIfNeeded: $0 * 31) }
        let digest = try blobs.put(bytes)
        #expect(digest == CascadeCrypto.SHA256.hash(bytes))
        #expect(blobs.path(of: digest) == "\(directory.path)/blobs/sha256/\(digest.hex)")
        #expect(FileIO.list("\(directory.path)/blobs/sha256") == [digest.hex])
        #expect(blobs.temporaryFiles().isEmpty)
        #expect(try blobs.size(of: digest) == 5000)
        #expect(try blobs.read(digest, offset: 4990, length: 100) == Array(bytes[4990...]))
        let file = try blobs.open(digest)
        #expect(try file.read(offset: 1000, length: 10) == Array(bytes[1000..<1010]))
        #expect(try file.read(offset: 5000, length: 10) == [])
        #expect(throws: StoreError.self) { try file.read(offset: 5001, length: 1) }
        try blobs.verify(digest)
        #expect(try blobs.put(bytes) == digest)  // idempotent
    }

    @Test("a flipped byte on disk is detected by verify")
    func corruption() throws {
        let digest = try blobs.put(Array("release bytes".utf8))
        let path = blobs.path(of: digest)
        let fd = try FileIO.open(path, O_WRONLY)
        try FileIO.writeAll(fd, [UInt8(ascii: "R")], at: 0, path: path)
        close(fd)
        let error = #expect(throws: StoreError.self) { try blobs.verify(digest) }
        #expect(error?.code == .corrupt)
        #expect(error?.message == "blob \(digest.hex) is corrupt: its content hashes to \(CascadeCrypto.SHA256.hash(Array("Release bytes".utf8)).hex)")
    }

    @Test("temp files a crash left behind are removed when the store opens")
    func staleTemporaries() throws {
        let stale = "\(directory.path)/blobs/sha256/.tmp-deadbeef"
        let fd = try FileIO.open(stale, O_WRONLY | O_CREAT)
        close(fd)
        #expect(blobs.temporaryFiles() == [".tmp-deadbeef"])
        let reopened = try BlobStore(dataDirectory: directory.path)
        #expect(reopened.temporaryFiles().isEmpty)
    }

    @Test("partial blobs take chunks at any offset and commit only with the right size and digest")
    func partial() throws {
        let bytes = Array("0123456789".utf8)
        let digest = CascadeCrypto.SHA256.hash(bytes)
        try blobs.writePartial(digest, at: 5, bytes: Array(bytes[5...]))
        #expect(try blobs.readPartial(digest, offset: 5, length: 5) == Array("56789".utf8))
        #expect(throws: StoreError(.corrupt, "partial blob \(digest.hex) is 10 bytes; the manifest says 11")) {
            try blobs.commitPartial(digest, size: 11)
        }
        try blobs.writePartial(digest, at: 0, bytes: Array(bytes[..<5]))
        try blobs.commitPartial(digest, size: 10)
        #expect(try blobs.read(digest, offset: 0, length: 10) == bytes)
        #expect(FileIO.list("\(directory.path)/blobs/partial").isEmpty)
        // Committing again (a crash after the rename) finds the blob and succeeds.
        try blobs.commitPartial(digest, size: 10)
        #expect(throws: StoreError(.notFound, "no partial blob \(CascadeCrypto.SHA256.hash([1]).hex) to commit")) {
            try blobs.commitPartial(CascadeCrypto.SHA256.hash([1]), size: 1)
        }
    }
}
