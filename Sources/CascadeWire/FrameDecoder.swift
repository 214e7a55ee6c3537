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
    /// A large frame whose payload is filled in place, in its own array, as it arrives.
    private var large: LargeFrame?

    /// Frames with at least this many payload bytes that are not all here yet are assembled
    /// in their own array (written in place as bytes arrive), so the payload is never copied
    /// out of a shared buffer; smaller ones are copied out of it, which is cheap at their size.
    public static let largeFrameThreshold = 64 * 1024

    private struct LargeFrame {
        let type: FrameType
        let flags: FrameFlags
        let streamID: UInt32
        var payload: [UInt8]
        var filled: Int

        var remaining: Int { payload.count - filled }

        mutating func take(_ bytes: UnsafeRawBufferPointer) -> Int {
            let count = min(remaining, bytes.count)
            // An empty buffer may have no address: nothing to copy then.
            guard count > 0, let source = bytes.baseAddress else { return 0 }
            payload.withUnsafeMutableBytes { target in
                target.baseAddress?.advanced(by: filled).copyMemory(from: source, byteCount: count)
            }
            filled += count
            return count
        }
    }

    public init(maxFrameSize: Int = Settings.defaults.maxFrameSize,
                expectPreface: Bool = false,
                supportedMajor: UInt16 = ProtocolVersion.current.major) {
        self.maxFrameSize = maxFrameSize
        self.awaitingPreface = expectPreface
        self.supportedMajor = supportedMajor
    }

    /// Bytes received but not yet returned as items.
    public var bufferedByteCount: Int {
        buffer.count - readIndex + (large.map { Frame.headerSize + $0.filled } ?? 0)
    }

    /// Bytes still missing from a large frame being assembled in place: a reader may write up
    /// to this many straight into it with `readDirectly` instead of feeding them.
    public var directReadCapacity: Int { failure == nil ? large?.remaining ?? 0 : 0 }

    /// Lets `body` write up to `directReadCapacity` bytes into the large frame being assembled
    /// (a socket read); `body` returns how many it wrote. Returns that count.
    public mutating func readDirectly(_ body: (UnsafeMutableRawBufferPointer) -> Int) -> Int {
        guard failure == nil, var frame = large, frame.remaining > 0 else { return 0 }
        large = nil  // keeps the payload uniquely referenced while it is written
        let filled = frame.filled
        let wrote = frame.payload.withUnsafeMutableBytes { bytes in
            body(UnsafeMutableRawBufferPointer(rebasing: bytes[filled...]))
        }
        frame.filled += min(max(wrote, 0), frame.remaining)
        large = frame
        return wrote
    }

    /// The error that poisoned this decoder, if any.
    public var error: WireError? { failure }

    /// Appends received bytes. Ignored once the decoder is poisoned.
    public mutating func feed(_ bytes: some Sequence<UInt8>) {
        feed(Array(bytes))
    }

    // Concrete overloads: a generic call from another module is not
    // specialized, so the hot paths get non-generic entry points.
    public mutating func feed(_ bytes: [UInt8]) {
        guard failure == nil else { return }
        if large != nil {
            let used = bytes.withUnsafeBytes { fillLarge($0) }
            if used == bytes.count { return }
            feed(bytes[used...])
            return
        }
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
        let used = large == nil ? 0 : bytes.withUnsafeBytes { fillLarge($0) }
        compact()
        buffer.append(contentsOf: bytes.dropFirst(used))
    }

    public mutating func feed(_ bytes: UnsafeRawBufferPointer) {
        guard failure == nil else { return }
        let used = large == nil ? 0 : fillLarge(bytes)
        compact()
        buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[used...]))
    }

    /// Puts the first bytes of `bytes` into the large frame being assembled; returns how many.
    private mutating func fillLarge(_ bytes: UnsafeRawBufferPointer) -> Int {
        guard var frame = large, !bytes.isEmpty else { return 0 }
        large = nil
        let used = frame.take(bytes)
        large = frame
        return used
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
            large = nil
            throw error
        }
    }

    private mutating func parseNext() throws(WireError) -> DecodedItem? {
        if let frame = large {
            // Bytes after the large frame stay in `buffer` until it is complete.
            guard frame.remaining == 0 else { return nil }
            large = nil
            return .frame(Frame(type: frame.type, flags: frame.flags, streamID: frame.streamID, payload: frame.payload))
        }
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
            if Int(length) >= Self.largeFrameThreshold {
                startLarge(length: Int(length))
            }
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

    // The header of a large frame is in but not all of its payload: give the payload its own
    // array now (its size passed the limit) and move what has arrived into it. The rest is
    // written there by `feed` or `readDirectly`, so each byte is copied once.
    private mutating func startLarge(length: Int) {
        let start = readIndex + Frame.headerSize
        var frame = LargeFrame(
            type: FrameType(buffer[readIndex + 4]),
            flags: FrameFlags(rawValue: buffer[readIndex + 5]),
            streamID: buffer.readBE32(at: readIndex + 6) & WireLimits.maxStreamID,
            payload: Self.uninitializedPayload(length), filled: 0)
        _ = buffer[start...].withUnsafeBytes { frame.take($0) }
        large = frame
        buffer = []
        readIndex = 0
    }

    // A large frame's payload, not zeroed first: every byte is written (`take`) before the
    // frame is handed out, and a frame cut short is dropped unread. Zeroing cost a memset
    // per 64 KiB chunk on the streaming path.
    private static func uninitializedPayload(_ length: Int) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: length) { _, count in count = length }
    }

    /// Up to this capacity the buffer keeps its storage once everything in it is consumed,
    /// so small calls append into the same memory read after read. Frames copy their
    /// payloads out, so nothing else holds on to it.
    static let retainedCapacity = 32 * 1024

    // Called before appending: drop consumed bytes when everything is consumed
    // (free) or when they are at least half the buffer (amortized O(1) per byte).
    private mutating func compact() {
        guard readIndex > 0 else { return }
        if readIndex == buffer.count {
            if buffer.capacity <= Self.retainedCapacity {
                buffer.removeAll(keepingCapacity: true)
            } else {
                buffer = []
            }
            readIndex = 0
        } else if readIndex >= 4096 && readIndex * 2 >= buffer.count {
            buffer.removeSubrange(0..<readIndex)
            readIndex = 0
        }
    }
}
