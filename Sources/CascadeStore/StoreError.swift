/// A failure in the coordinator's store. `code` says what kind (the coordinator maps it to an RPC
/// status: `illegalTransition` and `failedPrecondition` → FAILED_PRECONDITION, `notFound` →
/// NOT_FOUND, `alreadyExists` → ALREADY_EXISTS, `invalidArgument` → INVALID_ARGUMENT, the rest →
/// INTERNAL/UNAVAILABLE); `message` is one sentence for a log line or an operator.
public struct StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        /// SQLite failed in a way the store did not expect (see `sqliteCode`).
        public static let sqlite = Code(name: "sqlite")
        /// Another process holds the database lock longer than the busy timeout.
        public static let busy = Code(name: "busy")
        /// A uniqueness, foreign-key or check constraint refused a row.
        public static let constraint = Code(name: "constraint")
        public static let notFound = Code(name: "not found")
        public static let alreadyExists = Code(name: "already exists")
        public static let invalidArgument = Code(name: "invalid argument")
        /// A state machine refused a transition (rollout, rollout cluster, rollout agent).
        public static let illegalTransition = Code(name: "illegal transition")
        /// The request is valid but the current state does not allow it.
        public static let failedPrecondition = Code(name: "failed precondition")
        /// The database was written by a newer Cascade (its schema version is unknown here).
        public static let schemaTooNew = Code(name: "schema too new")
        /// A file operation of the blob store failed.
        public static let io = Code(name: "i/o")
        /// Stored bytes or rows do not match what they claim (digest mismatch, unknown enum value).
        public static let corrupt = Code(name: "corrupt")
        /// Another process holds the data directory's lock (another coordinator runs on it).
        public static let locked = Code(name: "locked")
        public var description: String { name }
    }

    public let code: Code
    public let message: String
    /// SQLite's extended result code, when SQLite reported the failure.
    public let sqliteCode: Int32?
    /// The SQL or operation that failed, for logs (never shown to remote peers).
    public let context: String?

    public init(_ code: Code, _ message: String, sqliteCode: Int32? = nil, context: String? = nil) {
        self.code = code
        self.message = message
        self.sqliteCode = sqliteCode
        self.context = context
    }

    public var description: String {
        guard let context else { return message }
        return "\(message) [\(context)]"
    }
}
