/// One frame as it travels on the wire: a 10-byte header plus payload.
///
/// This is the raw, untyped form produced by `FrameDecoder`; use
/// `FramePayload(frame)` to validate and interpret it.
public struct Frame: Sendable, Hashable, CustomStringConvertible {
    public static let headerSize = WireLimits.frameHeaderSize

    public var type: FrameType
    public var flags: FrameFlags
    /// 31-bit stream id; 0 is the connection. The decoder clears the reserved
    /// high bit and the encoder never sets it.
    public var streamID: UInt32
    public var payload: [UInt8]

    public init(type: FrameType, flags: FrameFlags = [], streamID: UInt32, payload: [UInt8] = []) {
        self.type = type
        self.flags = flags
        self.streamID = streamID
        self.payload = payload
    }

    /// Appends header and payload to `bytes`.
    public func encode(into bytes: inout [UInt8]) {
        FrameEncoder.append(self, to: &bytes)
    }

    public func encoded() -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Frame.headerSize + payload.count)
        encode(into: &bytes)
        return bytes
    }

    public var description: String {
        "\(type.name) stream=\(streamID) flags=0x\(String(flags.rawValue, radix: 16)) length=\(payload.count)"
    }
}

// Convenience constructors: each builds the canonical encoding of one frame type.
extension Frame {
    public static func data(streamID: UInt32, _ payload: [UInt8], endStream: Bool = false) -> Frame {
        Frame(type: .data, flags: endStream ? .endStream : [], streamID: streamID, payload: payload)
    }

    /// `block` is an encoded tagged message (schema in rpc.md).
    public static func headers(streamID: UInt32, _ block: [UInt8], endStream: Bool = false) -> Frame {
        Frame(type: .headers, flags: endStream ? .endStream : [], streamID: streamID, payload: block)
    }

    /// `block` is an encoded tagged message (schema in rpc.md).
    public static func trailers(streamID: UInt32, _ block: [UInt8]) -> Frame {
        Frame(type: .trailers, streamID: streamID, payload: block)
    }

    public static func reset(streamID: UInt32, code: ErrorCode) -> Frame {
        var payload: [UInt8] = []
        payload.reserveCapacity(4)
        payload.appendBE32(code.rawValue)
        return Frame(type: .reset, streamID: streamID, payload: payload)
    }

    public static func settings(_ entries: [Setting]) -> Frame {
        var payload: [UInt8] = []
        payload.reserveCapacity(entries.count * Setting.encodedSize)
        for entry in entries {
            payload.appendBE16(entry.id.rawValue)
            payload.appendBE32(entry.value)
        }
        return Frame(type: .settings, streamID: 0, payload: payload)
    }

    public static func settings(_ settings: Settings, omittingDefaults: Bool = false) -> Frame {
        .settings(settings.entries(omittingDefaults: omittingDefaults))
    }

    public static let settingsAck = Frame(type: .settings, flags: .ack, streamID: 0)

    /// `data` is 8 opaque bytes, carried as a big-endian UInt64.
    public static func ping(_ data: UInt64, ack: Bool = false) -> Frame {
        var payload: [UInt8] = []
        payload.reserveCapacity(8)
        payload.appendBE64(data)
        return Frame(type: .ping, flags: ack ? .ack : [], streamID: 0, payload: payload)
    }

    /// `reason` is truncated to 1024 UTF-8 bytes on a scalar boundary.
    public static func goaway(lastStreamID: UInt32, code: ErrorCode, reason: String = "") -> Frame {
        var payload: [UInt8] = []
        payload.appendBE32(lastStreamID & WireLimits.maxStreamID)
        payload.appendBE32(code.rawValue)
        appendTruncatedUTF8(reason, limit: WireLimits.maxGoawayReasonBytes, to: &payload)
        return Frame(type: .goaway, streamID: 0, payload: payload)
    }

    public static func windowUpdate(streamID: UInt32, increment: UInt32) -> Frame {
        var payload: [UInt8] = []
        payload.reserveCapacity(4)
        payload.appendBE32(increment & WireLimits.maxWindow)
        return Frame(type: .windowUpdate, streamID: streamID, payload: payload)
    }

    /// The canonical frame for a typed payload (inverse of `FramePayload(frame)`).
    public init(_ payload: FramePayload, streamID: UInt32) {
        switch payload {
        case .data(let bytes, let endStream):
            self = .data(streamID: streamID, bytes, endStream: endStream)
        case .headers(let block, let endStream):
            self = .headers(streamID: streamID, block, endStream: endStream)
        case .trailers(let block):
            self = .trailers(streamID: streamID, block)
        case .reset(let code):
            self = .reset(streamID: streamID, code: code)
        case .settings(let ack, let entries):
            self = ack ? .settingsAck : .settings(entries)
            self.streamID = streamID
        case .ping(let ack, let data):
            self = .ping(data, ack: ack)
            self.streamID = streamID
        case .goaway(let last, let code, let reason):
            self = .goaway(lastStreamID: last, code: code, reason: reason)
            self.streamID = streamID
        case .windowUpdate(let increment):
            self = .windowUpdate(streamID: streamID, increment: increment)
        case .unknown(let frame):
            self = frame
            self.streamID = streamID
        }
    }
}

/// Appends at most `limit` bytes of `string`'s UTF-8, never splitting a scalar.
func appendTruncatedUTF8(_ string: String, limit: Int, to bytes: inout [UInt8]) {
    var used = 0
    for scalar in string.unicodeScalars {
        let width = UTF8.width(scalar)
        if used + width > limit { break }
        used += width
    }
    bytes.append(contentsOf: string.utf8.prefix(used))
}
