#if canImport(Glibc)
import Glibc
#endif

/// Files that hold secrets: created with mode 0600 and never silently overwritten.
public enum SecretFile {
    /// Writes `contents` to a new file at `path` (mode 0600), fsynced; fails if the file exists.
    public static func create(at path: String, contents: String) throws(CryptoError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            let reason = String(cString: strerror(errno))
            if errno == EEXIST {
                throw CryptoError(.io, "refusing to overwrite \(path): the file already exists")
            }
            throw CryptoError(.io, "cannot create \(path): \(reason)")
        }
        defer { close(fd) }
        var bytes = Array(contents.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 {
                if errno == EINTR { continue }
                throw CryptoError(.io, "writing \(path) failed: \(String(cString: strerror(errno)))")
            }
            offset += written
        }
        guard fsync(fd) == 0 else {
            throw CryptoError(.io, "fsync of \(path) failed: \(String(cString: strerror(errno)))")
        }
        bytes.removeAll()
    }

    /// Reads a whole (small) file as UTF-8 text.
    public static func read(_ path: String, limit: Int = 1 << 20) throws(CryptoError) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CryptoError(.io, "cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw CryptoError(.io, "reading \(path) failed: \(String(cString: strerror(errno)))")
            }
            if count == 0 { break }
            out.append(contentsOf: buffer[0..<count])
            if out.count > limit { throw CryptoError(.io, "\(path) is larger than \(limit) bytes") }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
