#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The text of errno, for error messages.
func errnoText(_ code: Int32 = errno) -> String { String(cString: strerror(code)) }

/// A whole small file (/proc entries, progress records) as text; nil if it cannot be read.
func readSmallFile(_ path: String, limit: Int = 1 << 20) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 16 * 1024)
    while bytes.count < limit {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { break }
        bytes += buffer[0..<n]
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// Creates `path` and its parents (mode 0700) if they do not exist.
func makeDirectories(_ path: String) throws(RuntimeError) {
    var built = path.hasPrefix("/") ? "" : "."
    for part in path.split(separator: "/") {
        built += "/\(part)"
        if mkdir(built, 0o700) != 0 && errno != EEXIST {
            throw RuntimeError(.io, "cannot create directory \(built): \(errnoText())")
        }
    }
}

/// Writes all of `bytes` at `offset`, retrying short writes and EINTR.
func writeFully(_ fd: Int32, _ bytes: [UInt8], at offset: UInt64, path: String) throws(RuntimeError) {
    var done = 0
    while done < bytes.count {
        let n = bytes.withUnsafeBytes { raw in
            pwrite(fd, raw.baseAddress! + done, raw.count - done, off_t(offset) + off_t(done))
        }
        if n < 0 {
            if errno == EINTR { continue }
            if errno == ENOSPC {
                throw RuntimeError(.noSpace, "no space left on the device of \(path): \(bytes.count) more bytes needed at offset \(offset), \(freeBytes(path)) bytes free")
            }
            throw RuntimeError(.io, "writing \(bytes.count) bytes at offset \(offset) of \(path) failed: \(errnoText())")
        }
        done += n
    }
}

/// Reads exactly `count` bytes at `offset` (fewer only at the end of the file).
func readFully(_ fd: Int32, count: Int, at offset: UInt64, path: String) throws(RuntimeError) -> [UInt8] {
    var buffer = [UInt8](repeating: 0, count: count)
    var done = 0
    while done < count {
        let n = buffer.withUnsafeMutableBytes { raw in
            pread(fd, raw.baseAddress! + done, count - done, off_t(offset) + off_t(done))
        }
        if n < 0 {
            if errno == EINTR { continue }
            throw RuntimeError(.io, "reading \(count) bytes at offset \(offset) of \(path) failed: \(errnoText())")
        }
        if n == 0 { break }
        done += n
    }
    buffer.removeLast(count - done)
    return buffer
}

/// Bytes available to this user on the file system holding `path` (0 if it cannot be read).
func freeBytes(_ path: String) -> UInt64 {
    var info = statvfs()
    guard statvfs(path, &info) == 0 else { return 0 }
    return UInt64(info.f_bavail) * UInt64(info.f_frsize)
}

func syncData(_ fd: Int32, path: String) throws(RuntimeError) {
    guard fdatasync(fd) == 0 else { throw RuntimeError(.io, "fdatasync of \(path) failed: \(errnoText())") }
}
