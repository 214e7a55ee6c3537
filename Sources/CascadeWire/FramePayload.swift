/// A validated, typed view of a frame's payload (wire.md §5).
public enum FramePayload: Sendable, Hashable {
    case data([UInt8], endStream: Bool)
    /// A tagged message; schema in rpc.md.
    case headers([UInt8], endStream: Bool)
    /// A tagged message; always ends the stream.
    case trailers([UInt8])
    case reset(ErrorCode)
    case settings(ack: Bool, [Setting])
    /// 8 opaque bytes as a big-endian UInt64.
    case ping(ack: Bool, UInt64)
    case goaway(lastStreamID: UInt32, code: ErrorCode, reason: String)
    /// Applies to the frame's stream, or to the connection on stream 0.
    case windowUpdate(UInt32)
    /// A frame type this version does not know; the receiver skips it.
    case unknown(Frame)

    /// Validates the stream-id and size rules of `frame`'s type.
    ///
    /// Rule order when several are broken: stream id first, then size. Errors
    /// are connection errors except `header-too-large` and a zero
    /// WINDOW_UPDATE on a stream, which are stream errors.
    /// - Parameter maxHeaderSize: the MAX_HEADER_SIZE this endpoint advertised.
    public init(_ frame: Frame, maxHeaderSize: Int = Settings.defaults.maxHeaderSize) throws(WireError) {
        let stream = frame.streamID & WireLimits.maxStreamID
        let payload = frame.payload
        switch frame.type {
        case .data:
            try Self.requireStream(frame, stream)
            self = .data(payload, endStream: frame.flags.contains(.endStream))
        case .headers:
            try Self.requireStream(frame, stream)
            try Self.requireHeaderSize(frame, stream, maxHeaderSize)
            self = .headers(payload, endStream: frame.flags.contains(.endStream))
        case .trailers:
            try Self.requireStream(frame, stream)
            try Self.requireHeaderSize(frame, stream, maxHeaderSize)
            self = .trailers(payload)
        case .reset:
            try Self.requireStream(frame, stream)
            try Self.requireLength(frame, 4)
            self = .reset(ErrorCode(payload.readBE32(at: 0)))
        case .settings:
            try Self.requireConnection(frame, stream)
            let ack = frame.flags.contains(.ack)
            if ack {
                guard payload.isEmpty else {
                    throw WireError(.badFrameSize, code: .frameSizeError,
                                    "SETTINGS acknowledgement carries \(payload.count) payload bytes but must be empty")
                }
                self = .settings(ack: true, [])
                return
            }
            guard payload.count % Setting.encodedSize == 0 else {
                throw WireError(.badFrameSize, code: .frameSizeError,
                                "SETTINGS payload of \(payload.count) bytes is not a multiple of 6")
            }
            let count = payload.count / Setting.encodedSize
            guard count <= WireLimits.maxSettingsEntries else {
                throw WireError(.tooManySettings, code: .frameSizeError,
                                "SETTINGS frame has \(count) entries but at most \(WireLimits.maxSettingsEntries) are allowed")
            }
            var entries: [Setting] = []
            entries.reserveCapacity(count)
            for offset in stride(from: 0, to: payload.count, by: Setting.encodedSize) {
                entries.append(Setting(SettingID(payload.readBE16(at: offset)), payload.readBE32(at: offset + 2)))
            }
            self = .settings(ack: false, entries)
        case .ping:
            try Self.requireConnection(frame, stream)
            try Self.requireLength(frame, 8)
            self = .ping(ack: frame.flags.contains(.ack), payload.readBE64(at: 0))
        case .goaway:
            try Self.requireConnection(frame, stream)
            guard payload.count >= 8 else {
                throw WireError(.badFrameSize, code: .frameSizeError,
                                "GOAWAY payload of \(payload.count) bytes is shorter than the 8-byte minimum")
            }
            // Over-long or invalid UTF-8 reasons are tolerated: the GOAWAY's
            // last-stream id matters more for safe retries than its text.
            let reasonBytes = payload[8...].prefix(WireLimits.maxGoawayReasonBytes)
            self = .goaway(lastStreamID: payload.readBE32(at: 0) & WireLimits.maxStreamID,
                           code: ErrorCode(payload.readBE32(at: 4)),
                           reason: String(decoding: reasonBytes, as: UTF8.self))
        case .windowUpdate:
            try Self.requireLength(frame, 4)
            let increment = payload.readBE32(at: 0) & WireLimits.maxWindow
            guard increment != 0 else {
                let target = stream == 0 ? "the connection" : "stream \(stream)"
                throw WireError(.zeroWindowIncrement, code: .protocolError, streamID: stream,
                                "WINDOW_UPDATE for \(target) has an increment of 0")
            }
            self = .windowUpdate(increment)
        default:
            self = .unknown(frame)
        }
    }

    private static func requireStream(_ frame: Frame, _ stream: UInt32) throws(WireError) {
        guard stream == 0 else { return }
        throw WireError(.wrongStream, code: .protocolError,
                        "\(frame.type.name) frame on stream 0 is not allowed; it must belong to a stream")
    }

    private static func requireConnection(_ frame: Frame, _ stream: UInt32) throws(WireError) {
        guard stream != 0 else { return }
        throw WireError(.wrongStream, code: .protocolError,
                        "\(frame.type.name) frame on stream \(stream) is not allowed; it must be sent on stream 0")
    }

    private static func requireLength(_ frame: Frame, _ length: Int) throws(WireError) {
        guard frame.payload.count != length else { return }
        throw WireError(.badFrameSize, code: .frameSizeError,
                        "\(frame.type.name) payload is \(frame.payload.count) bytes but must be exactly \(length)")
    }

    private static func requireHeaderSize(_ frame: Frame, _ stream: UInt32, _ limit: Int) throws(WireError) {
        guard frame.payload.count > limit else { return }
        throw WireError(.headerTooLarge, code: .limitExceeded, streamID: stream,
                        "\(frame.type.name) block of \(frame.payload.count) bytes on stream \(stream) exceeds the \(limit)-byte limit (MAX_HEADER_SIZE)")
    }
}
