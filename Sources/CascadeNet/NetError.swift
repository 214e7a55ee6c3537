#if canImport(Glibc)
import Glibc
#endif

/// A failure of a socket, the event loop or a connection, with the operation it happened in.
public struct NetError: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        /// The socket or connection was closed (locally or by the peer) while in use.
        public static let closed = Code(name: "closed")
        /// The event loop was shut down.
        public static let shutdown = Code(name: "shutdown")
        public static let timedOut = Code(name: "timed out")
        public static let connectionRefused = Code(name: "connection refused")
        public static let connectionReset = Code(name: "connection reset")
        public static let addressInUse = Code(name: "address in use")
        public static let invalidAddress = Code(name: "invalid address")
        /// Two tasks tried to read (or to write) the same connection at once.
        public static let concurrentUse = Code(name: "concurrent use")
        public static let system = Code(name: "system error")
        public var description: String { name }
    }

    public let code: Code
    public let message: String
    /// The errno behind the error, when there is one.
    public let errno: Int32?

    public init(_ code: Code, _ message: String, errno: Int32? = nil) {
        self.code = code
        self.message = message
        self.errno = errno
    }

    public var description: String { message }

    /// Maps an errno from `operation` to a typed error with a readable message.
    static func system(_ operation: String, errno value: Int32) -> NetError {
        let code: Code
        switch value {
        case ECONNREFUSED: code = .connectionRefused
        case ECONNRESET, EPIPE: code = .connectionReset
        case EADDRINUSE: code = .addressInUse
        case ETIMEDOUT: code = .timedOut
        case EADDRNOTAVAIL, EAFNOSUPPORT: code = .invalidAddress
        default: code = .system
        }
        return NetError(code, "\(operation) failed: \(String(cString: strerror(value)))", errno: value)
    }
}
