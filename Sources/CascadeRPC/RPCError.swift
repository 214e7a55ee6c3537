public import CascadeNet

/// A call's status code (Protocols/rpc.md): 0 is OK; unknown values are kept and read as UNKNOWN.
public struct RPCCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let ok = RPCCode(rawValue: 0)
    public static let cancelled = RPCCode(rawValue: 1)
    public static let unknown = RPCCode(rawValue: 2)
    public static let invalidArgument = RPCCode(rawValue: 3)
    public static let deadlineExceeded = RPCCode(rawValue: 4)
    public static let notFound = RPCCode(rawValue: 5)
    public static let alreadyExists = RPCCode(rawValue: 6)
    public static let permissionDenied = RPCCode(rawValue: 7)
    public static let resourceExhausted = RPCCode(rawValue: 8)
    public static let failedPrecondition = RPCCode(rawValue: 9)
    public static let aborted = RPCCode(rawValue: 10)
    public static let outOfRange = RPCCode(rawValue: 11)
    public static let unimplemented = RPCCode(rawValue: 12)
    public static let `internal` = RPCCode(rawValue: 13)
    public static let unavailable = RPCCode(rawValue: 14)
    public static let dataLoss = RPCCode(rawValue: 15)
    public static let unauthenticated = RPCCode(rawValue: 16)

    private static let names = [
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
        "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
        "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
    ]

    public var description: String {
        rawValue < Self.names.count ? Self.names[Int(rawValue)] : "UNKNOWN(\(rawValue))"
    }
}

/// A failed call as the caller (or a handler) sees it: a status code and one clear sentence.
public struct RPCError: Error, Sendable, Hashable, CustomStringConvertible {
    public var code: RPCCode
    public var message: String
    /// True when the call was never processed by the server, so retrying it is safe.
    public var isSafeToRetry: Bool
    /// The TLS failure under a connection that failed (a refused handshake: its sentence says
    /// the cause and the fix), so a program can show that rather than "unavailable". Not part
    /// of the error's identity (==, hash): the code and message are.
    public var tls: TLSError? {
        get { tlsCause?.error }
        set { tlsCause = newValue.map(TLSCause.init) }
    }
    private var tlsCause: TLSCause?

    public init(_ code: RPCCode, _ message: String, isSafeToRetry: Bool = false) {
        self.code = code
        self.message = message
        self.isSafeToRetry = isSafeToRetry
    }

    /// UNAVAILABLE because the connection failed with `error`, keeping a TLS cause.
    static func connectionFailed(_ prefix: String, _ error: any Error, isSafeToRetry: Bool = false) -> RPCError {
        var failure = RPCError(.unavailable, "\(prefix)\(error)", isSafeToRetry: isSafeToRetry)
        failure.tls = error as? TLSError
        return failure
    }

    public var description: String { "\(code): \(message)" }

    public static func == (lhs: RPCError, rhs: RPCError) -> Bool {
        lhs.code == rhs.code && lhs.message == rhs.message && lhs.isSafeToRetry == rhs.isSafeToRetry
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(code)
        hasher.combine(message)
        hasher.combine(isSafeToRetry)
    }

    /// The server reset the call with REFUSED_STREAM: it was never processed (rpc.md §11, §14).
    static let refusedStream = RPCError(.unavailable, "the server refused the call before processing it", isSafeToRetry: true)
}

/// A TLS error held by reference, so RPCError stays three small fields wherever it is stored.
private final class TLSCause: Sendable {
    let error: TLSError
    init(_ error: TLSError) { self.error = error }
}
