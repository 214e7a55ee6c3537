import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One line per event on standard error ("cascade-upgrader[pid]: ..."), which systemd's
/// journal (or a test's log file) keeps. Unbuffered, so a SIGKILL loses nothing already said.
public enum Log {
    public static func info(_ message: String) {
        standardError("\(programName)[\(getpid())]: \(message)\n")
    }

    /// Writes `text` to fd 2 as is (no stdio buffer shared between threads).
    public static func standardError(_ text: String) {
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { return }
            offset += written
        }
        bytes.removeAll()
    }

    private static var programName: String {
        (CommandLine.arguments.first.map { ($0 as NSString).lastPathComponent }) ?? "cascade"
    }
}

/// Waits without burning CPU between checks of a condition (the daemons' poll interval).
public func pollPause(_ interval: Duration) {
    let (seconds, attoseconds) = interval.components
    var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }  // poll interval, not a fixed wait
}
