import CascadeWire

/// Messages inside a stream's DATA: a 4-byte big-endian length, then the message (rpc.md).
enum MessageFraming {
    static let prefixSize = 4
    /// Room a streamed message is encoded behind: its DATA frame header and length prefix go
    /// there, and the array is queued as it is (no copy of a large message into the queue).
    static let headroom = Frame.headerSize + prefixSize

    /// The 4-byte big-endian length that precedes a message.
    static func prefix(for message: [UInt8]) -> [UInt8] {
        prefix(count: message.count)
    }

    /// The 4-byte big-endian length of a message of `count` bytes.
    static func prefix(count: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(prefixSize)
        appendPrefix(length: count, to: &bytes)
        return bytes
    }

    /// Appends the 4-byte big-endian length of a message of `length` bytes.
    static func appendPrefix(length: Int, to bytes: inout [UInt8]) {
        let length = UInt32(length)
        bytes.append(UInt8(length >> 24))
        bytes.append(UInt8(truncatingIfNeeded: length >> 16))
        bytes.append(UInt8(truncatingIfNeeded: length >> 8))
        bytes.append(UInt8(truncatingIfNeeded: length))
    }

    static func append(_ message: [UInt8], to bytes: inout [UInt8]) {
        appendPrefix(length: message.count, to: &bytes)
        bytes.append(contentsOf: message)
    }

    /// Appends a DATA frame carrying one whole message (its length prefix, then its bytes),
    /// so no framed copy of the message is built first.
    static func appendDataFrame(streamID: UInt32, message: [UInt8], endStream: Bool, to bytes: inout [UInt8]) {
        FrameEncoder.appendHeader(payloadLength: message.count + prefixSize, type: .data,
                                  flags: endStream ? .endStream : [], streamID: streamID, to: &bytes)
        append(message, to: &bytes)
    }
}

/// Reassembles messages from DATA payloads split anywhere. A length over the limit is
/// rejected as soon as its 4 bytes are in, before anything is buffered for it. A partial
/// message's buffer grows with the bytes that arrive, never with the length it claims: a
/// peer that claims 4 MiB and sends one byte costs one byte (rpc.md §15.1).
struct MessageDeframer: Sendable {
    let maxMessageSize: Int
    private var prefix: [UInt8] = []
    private var expected: Int?
    private var current: [UInt8] = []

    init(maxMessageSize: Int) {
        self.maxMessageSize = maxMessageSize
    }

    /// Memory held for a partial message (its buffer's capacity, which grows with what
    /// arrived, at most about twice that).
    var bufferedByteCount: Int { current.capacity + prefix.count }

    /// True when no partial message is held (END_STREAM here is clean).
    var isIdle: Bool { expected == nil && prefix.isEmpty }

    /// Feeds DATA bytes; returns the messages they complete. A message that lies whole
    /// inside `bytes` is returned as a slice of it, without copying.
    mutating func feed(_ bytes: ArraySlice<UInt8>) throws(RPCError) -> [ArraySlice<UInt8>] {
        var messages: [ArraySlice<UInt8>] = []
        try feed(bytes) { messages.append($0) }
        return messages
    }

    /// Feeds DATA bytes and hands each message they complete to `each`, in order (no array
    /// of them per frame).
    mutating func feed(_ bytes: ArraySlice<UInt8>, each: (ArraySlice<UInt8>) -> Void) throws(RPCError) {
        var index = bytes.startIndex
        while index < bytes.endIndex {
            if expected == nil, prefix.isEmpty, bytes.endIndex - index >= MessageFraming.prefixSize {
                let length = bytes[index..<index + 4].reduce(0) { $0 << 8 | Int($1) }
                guard length <= maxMessageSize else {
                    throw RPCError(.resourceExhausted, "a message of \(length) bytes exceeds the \(maxMessageSize)-byte limit")
                }
                if bytes.endIndex - index - 4 >= length {
                    each(bytes[(index + 4)..<(index + 4 + length)])
                    index += 4 + length
                    continue
                }
            }
            guard let length = expected else {
                prefix.append(bytes[index])
                index += 1
                if prefix.count == MessageFraming.prefixSize {
                    let value = prefix.reduce(0) { $0 << 8 | Int($1) }
                    prefix.removeAll(keepingCapacity: true)
                    guard value <= maxMessageSize else {
                        throw RPCError(.resourceExhausted, "a message of \(value) bytes exceeds the \(maxMessageSize)-byte limit")
                    }
                    if value == 0 {
                        each([])
                    } else {
                        expected = value
                    }
                }
                continue
            }
            let take = min(length - current.count, bytes.endIndex - index)
            current.append(contentsOf: bytes[index..<index + take])
            index += take
            if current.count == length {
                each(current[...])
                current = []
                expected = nil
            }
        }
    }
}
