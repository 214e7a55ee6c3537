/// A violation of wire.md found while decoding.
///
/// `code` is what the receiver sends to the peer: in a GOAWAY when `streamID`
/// is 0 (connection error), in a RESET on `streamID` otherwise (stream error).
/// `kind` names the exact condition, matching the tokens used in wire.md and
/// in the test vectors, so callers and tests need not parse `message`.
public struct WireError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        // Connection preface
        case badMagic = "bad-magic"
        case unsupportedVersion = "unsupported-version"
        // Framing
        case frameTooLarge = "frame-too-large"
        case badFrameSize = "bad-frame-size"
        case tooManySettings = "too-many-settings"
        case wrongStream = "wrong-stream"
        case badSettingValue = "bad-setting-value"
        case zeroWindowIncrement = "zero-window-increment"
        case headerTooLarge = "header-too-large"
        // Raised by the RPC layer; defined here so all wire conditions share one type.
        case windowOverflow = "window-overflow"
        case messageTooLarge = "message-too-large"
        /// A frame that the call state machine does not allow here (rpc.md §abuse and lifecycle).
        case unexpectedFrame = "unexpected-frame"
        /// A peer over one of the rate limits of rpc.md (floods of pings, settings, resets...).
        case abuse = "abuse"
        // Tagged message encoding
        case truncated = "truncated"
        case varintOverflow = "varint-overflow"
        case invalidWireType = "invalid-wire-type"
        case invalidFieldNumber = "invalid-field-number"
        case wrongWireType = "wrong-wire-type"
        case invalidUTF8 = "invalid-utf8"
        case valueOutOfRange = "value-out-of-range"
        case nestingTooDeep = "nesting-too-deep"
    }

    public var kind: Kind
    public var code: ErrorCode
    /// 0 for a connection error; otherwise the stream to reset.
    public var streamID: UInt32
    /// One sentence with context, suitable for logs and GOAWAY reasons.
    public var message: String

    public init(_ kind: Kind, code: ErrorCode, streamID: UInt32 = 0, _ message: String) {
        self.kind = kind
        self.code = code
        self.streamID = streamID
        self.message = message
    }

    public var isConnectionError: Bool { streamID == 0 }

    public var description: String {
        let scope = streamID == 0 ? "connection" : "stream \(streamID)"
        return "\(code.name) [\(kind.rawValue), \(scope)]: \(message)"
    }

    // Message-level errors are all PROTOCOL_ERROR; the RPC layer decides scope.
    static func malformed(_ kind: Kind, _ message: String) -> WireError {
        WireError(kind, code: .protocolError, message)
    }
}
