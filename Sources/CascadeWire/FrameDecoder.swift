/// One item produced by `FrameDecoder`.
public enum DecodedItem: Sendable, Hashable {
    /// The peer's preface (only when the decoder was created with `expectPreface`).
    case preface(ProtocolVersion)
    case frame(Frame)
}

/// Incremental frame decoder: feed bytes in any split, pull items with `next()`.
///
/// Only framing is checked here (preface, frame size limit); per-type rules
/// are checked by `FramePayload(frame)`. The size limit is enforced from the
/// header alone, before any payload is buffered. After an error the decoder
/// is poisoned: every later `next()` throws the same error.
public struct FrameDecoder: Sendable {
    /// Largest payload accepted: the MAX_FRAME_SIZE this endpoint advertised.
    /// May be changed at any time; it applies to the next header parsed.
    public var maxFrameSize: Int

    // Unread bytes are buffer[readIndex...]. Consumed bytes are dropped in bulk
    // (see compact) so steady-state cost is one copy in and one copy out.
    private var buffer: [UInt8] = []
    private var readIndex = 0
    private var awaitingPreface: Bool
    private var supportedMajor: UInt16
    private var failure: WireError?

    public init(maxFrameSize: Int = Settings.defaults.maxFrameSize,
                expectPreface: Bool = false,
                supportedMajor: UInt16 = ProtocolVersion.current.major) {
        self.maxFrameSize = maxFrameSize
        self.awaitingPreface = expectPreface
        self.supportedMajor = supportedMajor
    }

    /// Bytes received but not yet returned as items.
    public var bufferedByteCount: Int { buffer.count - readIndex }

    /// The error that poisoned this decoder, if any.
    public var error: WireError? { failure }

    /// Appends received bytes. Ignored once the decoder is poisoned.
    public mutating func feed(_ bytes: some Sequence<UInt8>) {
        guard failure == nil else { return }
        compact()
        buffer.append(contentsOf: bytes)
    }

    // Concrete overloads: a generic call from another module is not
    // specialized, so the hot paths get non-generic entry points.
    public mutating func feed(_ bytes: [UInt8]) {
        guard failure == nil else { return }
        compact()
        // Nothing buffered: adopt the caller's array instead of copying it (bulk reads).
        if buffer.isEmpty {
            buffer = bytes
            return
        }
        buffer.append(contentsOf: bytes)
    }

    public mutating func feed(_ bytes: ArraySlice<UInt8>) {
        guard failure == nil else { return }
        compact()
        buffer.append(contentsOf: bytes)
    }

    public mutating func feed(_ bytes: UnsafeRawBufferPointer) {
        guard failure == nil else { return }
        compact()
        buffer.append(contentsOf: bytes)
    }

    /// The next complete item, or nil if more bytes are needed.
    public mutating func next() throws(WireError) -> DecodedItem? {
        if let failure { throw failure }
        do throws(WireError) {
            return try parseNext()
        } catch {
            failure = error
            buffer = []
            readIndex = 0
            throw error
        }
    }

    private mutating func parseNext() throws(WireError) -> DecodedItem? {
        let available = buffer.count - readIndex
        if awaitingPreface {
            guard let version = try Preface.parse(buffer[readIndex...], supportedMajor: supportedMajor) else {
                return nil
            }
            readIndex += Preface.size
            awaitingPreface = false
            return .preface(version)
        }
        guard available >= Frame.headerSize else { return nil }
        let length = buffer.readBE32(at: readIndex)
        // Checked before waiting for the payload, so a huge claimed length is
        // rejected after 10 bytes instead of being buffered.
        guard UInt64(length) <= UInt64(clamping: max(maxFrameSize, 0)) else {
            let type = FrameType(buffer[readIndex + 4])
            throw WireError(.frameTooLarge, code: .frameSizeError,
                            "\(type.name) frame of \(length) bytes exceeds the \(maxFrameSize)-byte limit (MAX_FRAME_SIZE)")
        }
        let total = Frame.headerSize + Int(length)
        guard available >= total else {
            reserveForFrame(total)
            return nil
        }
        let start = readIndex + Frame.headerSize
        let frame = Frame(
            type: FrameType(buffer[readIndex + 4]),
            flags: FrameFlags(rawValue: buffer[readIndex + 5]),
            streamID: buffer.readBE32(at: readIndex + 6) & WireLimits.maxStreamID,
            payload: Array(buffer[start..<(start + Int(length))]))
        readIndex += total
        return .frame(frame)
    }

    // A large frame arrives over many reads: make room for all of it now (its header passed
    // the size limit), so the appends that follow copy each byte once instead of regrowing
    // the buffer, which copied a 1 MiB frame about twice more.
    private mutating func reserveForFrame(_ total: Int) {
        guard buffer.capacity - readIndex < total else { return }
        if readIndex > 0 {
            buffer.removeSubrange(0..<readIndex)
            readIndex = 0
        }
        buffer.reserveCapacity(total)
    }

    // Called before appending: drop consumed bytes when everything is consumed
    // (free) or when they are at least half the buffer (amortized O(1) per byte).
    private mutating func compact() {
        guard readIndex > 0 else { return }
        if readIndex == buffer.count {
            buffer = []
            readIndex = 0
        } else if readIndex >= 4096 && readIndex * 2 >= buffer.count {
            buffer.removeSubrange(0..<readIndex)
            readIndex = 0
        }
    }
}
