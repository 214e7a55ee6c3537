/// A 32-bit error code carried by RESET and GOAWAY (wire.md §7).
///
/// A struct rather than an enum so that codes added by newer peers survive
/// decoding and re-encoding unchanged instead of failing to parse.
public struct ErrorCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32

    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public init(_ rawValue: UInt32) { self.rawValue = rawValue }

    public static let noError = ErrorCode(0)
    public static let protocolError = ErrorCode(1)
    public static let internalError = ErrorCode(2)
    public static let flowControlError = ErrorCode(3)
    public static let settingsTimeout = ErrorCode(4)
    public static let streamClosed = ErrorCode(5)
    public static let frameSizeError = ErrorCode(6)
    /// The stream was not processed at all, so the call is safe to retry.
    public static let refusedStream = ErrorCode(7)
    public static let cancel = ErrorCode(8)
    public static let enhanceYourCalm = ErrorCode(9)
    public static let unsupportedVersion = ErrorCode(10)
    public static let limitExceeded = ErrorCode(11)

    public static let known: [ErrorCode] = (0...11).map { ErrorCode($0) }

    public var isKnown: Bool { rawValue <= 11 }

    /// The code whose semantics apply: unknown codes are handled like INTERNAL_ERROR.
    public var effective: ErrorCode { isKnown ? self : .internalError }

    /// The spec name, e.g. "PROTOCOL_ERROR"; unknown codes render as "UNKNOWN_<n>".
    public var name: String {
        switch rawValue {
        case 0: "NO_ERROR"
        case 1: "PROTOCOL_ERROR"
        case 2: "INTERNAL_ERROR"
        case 3: "FLOW_CONTROL_ERROR"
        case 4: "SETTINGS_TIMEOUT"
        case 5: "STREAM_CLOSED"
        case 6: "FRAME_SIZE_ERROR"
        case 7: "REFUSED_STREAM"
        case 8: "CANCEL"
        case 9: "ENHANCE_YOUR_CALM"
        case 10: "UNSUPPORTED_VERSION"
        case 11: "LIMIT_EXCEEDED"
        default: "UNKNOWN_\(rawValue)"
        }
    }

    /// Looks a code up by its spec name (used by tooling and test vectors).
    public init?(name: String) {
        guard let code = ErrorCode.known.first(where: { $0.name == name }) else { return nil }
        self = code
    }

    public var description: String { name }
}
