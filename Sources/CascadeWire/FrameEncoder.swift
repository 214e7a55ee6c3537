/// Frame serialization. `Frame.encode(into:)` is the usual entry point; the
/// header and DATA helpers let a sender frame a large payload without first
/// copying it into a `Frame`.
public enum FrameEncoder {
    /// Appends a 10-byte frame header. Senders must respect the peer's
    /// MAX_FRAME_SIZE; this function only enforces the 32-bit length field.
    public static func appendHeader(
        payloadLength: Int, type: FrameType, flags: FrameFlags, streamID: UInt32,
        to bytes: inout [UInt8]
    ) {
        precondition(payloadLength >= 0 && UInt64(payloadLength) <= UInt64(UInt32.max),
                     "frame payload length \(payloadLength) does not fit the 32-bit length field")
        bytes.appendBE32(UInt32(truncatingIfNeeded: payloadLength))
        bytes.append(type.rawValue)
        bytes.append(flags.rawValue)
        bytes.appendBE32(streamID & WireLimits.maxStreamID)
    }

    public static func append(_ frame: Frame, to bytes: inout [UInt8]) {
        appendHeader(payloadLength: frame.payload.count, type: frame.type, flags: frame.flags,
                     streamID: frame.streamID, to: &bytes)
        bytes.append(contentsOf: frame.payload)
    }

    public static func appendData(
        streamID: UInt32, payload: [UInt8], endStream: Bool, to bytes: inout [UInt8]
    ) {
        appendHeader(payloadLength: payload.count, type: .data, flags: endStream ? .endStream : [],
                     streamID: streamID, to: &bytes)
        bytes.append(contentsOf: payload)
    }

    public static func appendData(
        streamID: UInt32, payload: UnsafeRawBufferPointer, endStream: Bool, to bytes: inout [UInt8]
    ) {
        appendHeader(payloadLength: payload.count, type: .data, flags: endStream ? .endStream : [],
                     streamID: streamID, to: &bytes)
        bytes.append(contentsOf: payload)
    }

    /// Appends a DATA frame whose payload is `first` followed by `second` (a message's length
    /// prefix and body), so the caller never has to join them into a new array.
    public static func appendData(
        streamID: UInt32, _ first: ArraySlice<UInt8>, _ second: ArraySlice<UInt8>, endStream: Bool,
        to bytes: inout [UInt8]
    ) {
        appendHeader(payloadLength: first.count + second.count, type: .data, flags: endStream ? .endStream : [],
                     streamID: streamID, to: &bytes)
        first.withUnsafeBytes { bytes.append(contentsOf: $0) }
        second.withUnsafeBytes { bytes.append(contentsOf: $0) }
    }

    /// Appends a whole DATA frame whose payload is taken from any byte collection.
    public static func appendData(
        streamID: UInt32, payload: some Collection<UInt8>, endStream: Bool, to bytes: inout [UInt8]
    ) {
        appendHeader(payloadLength: payload.count, type: .data, flags: endStream ? .endStream : [],
                     streamID: streamID, to: &bytes)
        bytes.append(contentsOf: payload)
    }
}
