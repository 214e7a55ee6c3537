/// Builds a tagged message (wire.md §10) into a byte array.
///
/// Every call writes a field, even a default value: omitting defaults is the
/// caller's job (a `WireMessage.encode`), because repeated fields must keep
/// their zero elements. Field numbers must be 1...2^29-1; passing anything
/// else is a programming error and traps.
public struct MessageWriter: Sendable {
    /// The encoded message, after `headroom` zero bytes left for the caller's own header.
    public private(set) var bytes: [UInt8] = []
    private var headroom = 0

    public init() {}

    public init(reservingCapacity capacity: Int) {
        bytes.reserveCapacity(capacity)
    }

    /// Leaves `headroom` zero bytes in front of the message, so a sender can put its framing
    /// there and send the array as it is instead of copying the message behind a header.
    public init(headroom: Int, reservingCapacity capacity: Int) {
        precondition(headroom >= 0, "headroom cannot be negative")
        bytes.reserveCapacity(headroom + capacity)
        bytes.append(contentsOf: repeatElement(0, count: headroom))
        self.headroom = headroom
    }

    /// Bytes of the message written so far (not counting the headroom).
    public var count: Int { bytes.count - headroom }

    /// Writes the key varint `(field << 3) | wireType`.
    public mutating func writeTag(field: Int, wireType: WireType) {
        precondition(field >= 1 && field <= WireLimits.maxFieldNumber, "field number \(field) is outside 1...2^29-1")
        Varint.append(UInt64(field) << 3 | UInt64(wireType.rawValue), to: &bytes)
    }

    public mutating func writeVarint(field: Int, _ value: UInt64) {
        writeTag(field: field, wireType: .varint)
        Varint.append(value, to: &bytes)
    }

    public mutating func writeBool(field: Int, _ value: Bool) {
        writeVarint(field: field, value ? 1 : 0)
    }

    /// Signed integers use zigzag so small negative numbers stay short.
    public mutating func writeSInt64(field: Int, _ value: Int64) {
        writeVarint(field: field, Varint.zigzag(value))
    }

    /// 8 bytes, little-endian.
    public mutating func writeFixed64(field: Int, _ value: UInt64) {
        writeTag(field: field, wireType: .fixed64)
        appendLE64(value)
    }

    /// 4 bytes, little-endian.
    public mutating func writeFixed32(field: Int, _ value: UInt32) {
        writeTag(field: field, wireType: .fixed32)
        appendLE32(value)
    }

    /// IEEE-754 binary64 bit pattern as FIXED64.
    public mutating func writeDouble(field: Int, _ value: Double) {
        writeFixed64(field: field, value.bitPattern)
    }

    /// IEEE-754 binary32 bit pattern as FIXED32.
    public mutating func writeFloat(field: Int, _ value: Float) {
        writeFixed32(field: field, value.bitPattern)
    }

    public mutating func writeBytes(field: Int, _ value: some Collection<UInt8>) {
        writeTag(field: field, wireType: .lengthDelimited)
        Varint.append(UInt64(value.count), to: &bytes)
        bytes.append(contentsOf: value)
    }

    // Non-generic overload so large payloads from other modules take the fast path.
    public mutating func writeBytes(field: Int, _ value: [UInt8]) {
        writeTag(field: field, wireType: .lengthDelimited)
        Varint.append(UInt64(value.count), to: &bytes)
        bytes.append(contentsOf: value)
    }

    public mutating func writeString(field: Int, _ value: String) {
        writeBytes(field: field, value.utf8)
    }

    /// Writes a nested message built by `build` into a fresh writer.
    public mutating func writeMessage<E: Error>(
        field: Int, _ build: (inout MessageWriter) throws(E) -> Void
    ) throws(E) {
        var nested = MessageWriter()
        try build(&nested)
        writeBytes(field: field, nested.bytes)
    }

    public mutating func writeMessage(field: Int, _ message: some WireMessage) {
        var nested = MessageWriter()
        message.encode(to: &nested)
        writeBytes(field: field, nested.bytes)
    }

    /// Repeated varints packed into one LENGTH_DELIMITED field.
    public mutating func writePackedVarints(field: Int, _ values: some Collection<UInt64>) {
        writeTag(field: field, wireType: .lengthDelimited)
        var length = 0
        for value in values { length += Varint.size(of: value) }
        Varint.append(UInt64(length), to: &bytes)
        for value in values { Varint.append(value, to: &bytes) }
    }

    /// Repeated zigzag-encoded signed integers, packed.
    public mutating func writePackedSInt64(field: Int, _ values: some Collection<Int64>) {
        writePackedVarints(field: field, values.lazy.map(Varint.zigzag))
    }

    private mutating func appendLE64(_ value: UInt64) {
        appendLE32(UInt32(truncatingIfNeeded: value))
        appendLE32(UInt32(truncatingIfNeeded: value >> 32))
    }

    private mutating func appendLE32(_ value: UInt32) {
        bytes.append(UInt8(truncatingIfNeeded: value))
        bytes.append(UInt8(truncatingIfNeeded: value >> 8))
        bytes.append(UInt8(truncatingIfNeeded: value >> 16))
        bytes.append(UInt8(truncatingIfNeeded: value >> 24))
    }
}
