/// Why the runtime could not do something, with the context to act on it.
public struct RuntimeError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        public var description: String { name }

        /// The configuration cannot work (bad address, unreadable TLS files...).
        public static let configuration = Code(name: "configuration")
        /// Reading or writing the state directory failed.
        public static let io = Code(name: "io")
        /// A release was refused (signature, version, or its bytes).
        public static let refusedRelease = Code(name: "refused-release")
        /// A source served a chunk that does not match the signed manifest.
        public static let badChunk = Code(name: "bad-chunk")
        /// The peer is not who the assignment says (a leader with another id).
        public static let wrongPeer = Code(name: "wrong-peer")
        /// The disk holding the staged download is full (the message gives the sizes).
        public static let noSpace = Code(name: "no-space")
        /// The runtime is shutting down or the role changed under the operation.
        public static let stopped = Code(name: "stopped")
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}
