/// A failure installing, switching or running a release, with one sentence that says what and where.
public struct InstallError: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        /// A file-system or process call failed.
        public static let io = Code(name: "i/o")
        /// A bundle holds something that could write outside its release directory, or is malformed.
        public static let unsafeBundle = Code(name: "unsafe bundle")
        /// A release directory lacks a binary or a valid VERSION.
        public static let invalidRelease = Code(name: "invalid release")
        /// The root is not laid out as an agent root (or already is, for `install`).
        public static let layout = Code(name: "layout")
        /// The request was refused (a failed version, an upgrade already running, ...).
        public static let refused = Code(name: "refused")
        /// A peer process did not answer, or answered something unexpected.
        public static let peer = Code(name: "peer")
        /// Something did not happen within its deadline.
        public static let timeout = Code(name: "timeout")
        public var description: String { name }
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
