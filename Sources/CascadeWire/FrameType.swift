/// The frame type byte. A struct so unknown types survive decoding: receivers
/// skip them (wire.md §5.9), which is the protocol's extension point.
public struct FrameType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8

    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public init(_ rawValue: UInt8) { self.rawValue = rawValue }

    public static let data = FrameType(0x0)
    public static let headers = FrameType(0x1)
    public static let trailers = FrameType(0x2)
    public static let reset = FrameType(0x3)
    public static let settings = FrameType(0x4)
    public static let ping = FrameType(0x5)
    public static let goaway = FrameType(0x6)
    public static let windowUpdate = FrameType(0x7)

    public var isKnown: Bool { rawValue <= 0x7 }

    public var name: String {
        switch rawValue {
        case 0x0: "DATA"
        case 0x1: "HEADERS"
        case 0x2: "TRAILERS"
        case 0x3: "RESET"
        case 0x4: "SETTINGS"
        case 0x5: "PING"
        case 0x6: "GOAWAY"
        case 0x7: "WINDOW_UPDATE"
        default: "UNKNOWN_0x" + String(rawValue, radix: 16)
        }
    }

    public var description: String { name }
}

/// Frame flag bits. Bits a frame type does not define are ignored on receipt
/// (but preserved in `Frame` so a raw frame re-encodes unchanged).
public struct FrameFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// DATA, HEADERS: the sender's last frame on this stream.
    public static let endStream = FrameFlags(rawValue: 0x1)
    /// SETTINGS, PING: this frame is an acknowledgement.
    public static let ack = FrameFlags(rawValue: 0x1)
}
