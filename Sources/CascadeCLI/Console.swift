#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Where a program writes: standard output and error, or buffers in tests.
public struct Console: Sendable {
    /// Writes text to standard output.
    public let writeOut: @Sendable (String) -> Void
    /// Writes text to standard error.
    public let writeError: @Sendable (String) -> Void
    /// Whether standard output is a terminal (live views redraw in place only then).
    public let isTerminal: Bool
    /// Terminal width in columns, when known (live views cut lines to it so redraws stay aligned).
    public let columns: Int?

    /// A console from two writers; for tests and custom sinks.
    public init(isTerminal: Bool = false, columns: Int? = nil,
                writeOut: @escaping @Sendable (String) -> Void,
                writeError: @escaping @Sendable (String) -> Void) {
        self.writeOut = writeOut
        self.writeError = writeError
        self.isTerminal = isTerminal
        self.columns = columns
    }

    /// The process's file descriptors 1 and 2, unbuffered so output order is the call order.
    public static var standard: Console {
        let terminal = isatty(1) == 1
        return Console(isTerminal: terminal, columns: terminal ? terminalColumns() : nil,
                       writeOut: { writeAll($0, to: 1) }, writeError: { writeAll($0, to: 2) })
    }
}

/// A console that keeps what is written, for tests.
public final class CapturedConsole: Sendable {
    private let buffers = Mutex<(out: String, error: String)>(("", ""))
    /// Whether the console claims to be a terminal.
    public let isTerminal: Bool
    /// The claimed terminal width.
    public let columns: Int?

    /// A capturing console; `isTerminal` decides how live views draw.
    public init(isTerminal: Bool = false, columns: Int? = nil) {
        self.isTerminal = isTerminal
        self.columns = columns
    }

    /// The console to hand to a program or view.
    public var console: Console {
        Console(isTerminal: isTerminal, columns: columns,
                writeOut: { text in self.buffers.withLock { $0.out += text } },
                writeError: { text in self.buffers.withLock { $0.error += text } })
    }

    /// Everything written to standard output so far.
    public var output: String { buffers.withLock { $0.out } }
    /// Everything written to standard error so far.
    public var errorOutput: String { buffers.withLock { $0.error } }
}

/// Writes all of `text`, retrying short writes and EINTR; errors (a closed pipe) are dropped.
private func writeAll(_ text: String, to descriptor: Int32) {
    var bytes = Array(text.utf8)
    var offset = 0
    while offset < bytes.count {
        let written = bytes.withUnsafeMutableBytes { raw in
            write(descriptor, raw.baseAddress! + offset, raw.count - offset)
        }
        if written > 0 {
            offset += written
        } else if written < 0 && errno == EINTR {
            continue
        } else {
            return
        }
    }
}

/// The terminal's width from TIOCGWINSZ, or nil if unknown.
private func terminalColumns() -> Int? {
    var size = winsize()
    #if canImport(Glibc)
    let request = UInt(TIOCGWINSZ)
    #else
    let request = TIOCGWINSZ
    #endif
    guard ioctl(1, request, &size) == 0, size.ws_col > 0 else { return nil }
    return Int(size.ws_col)
}
