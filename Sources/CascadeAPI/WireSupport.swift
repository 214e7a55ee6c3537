import CascadeCrypto
import CascadeWire

/// Bounds every API decoder enforces (Protocols/services.md §2.4), so a hostile message costs
/// at most a small multiple of its own size and never an unbounded loop or allocation.
public enum APILimits {
    /// Elements of any one repeated field in one message.
    public static let maxRepeatedElements = 100_000
    /// Chunks in one manifest: 64 GiB at the default 1 MiB chunk size.
    public static let maxChunkCount = 65_536
    /// Largest chunk size: a `Chunk` message with 2 MiB of data fits the default 4 MiB MAX_MESSAGE_SIZE.
    public static let maxChunkSize: UInt32 = 2 * 1024 * 1024
    /// The chunk size `ManifestBuilder` uses unless told otherwise.
    public static let defaultChunkSize: UInt32 = 1024 * 1024
    /// Fixed-point scale of idle ratios on the wire: parts per million.
    public static let ratioScale: UInt32 = 1_000_000
}

/// An enumeration carried as a uint32 varint. Values a reader does not know are kept
/// (`unknown(n)`), never rejected: a newer peer may send states this build has never seen.
/// `unknown(n)` is only for values without a case of their own; decoding never makes
/// `unknown(1)` where a named case exists.
public protocol WireEnum: Hashable, Sendable, CustomStringConvertible {
    init(wireValue: UInt32)
    var wireValue: UInt32 { get }
}

extension Field {
    func wireEnum<E: WireEnum>(_ type: E.Type = E.self) throws(WireError) -> E {
        E(wireValue: try uint32())
    }

    /// A SHA-256 digest: exactly 32 bytes.
    func digest() throws(WireError) -> SHA256Digest {
        let raw = try byteSlice()
        guard let digest = SHA256Digest(bytes: Array(raw)) else {
            throw WireError(.valueOutOfRange, code: .protocolError,
                "field \(number) must hold a 32-byte SHA-256 digest, not \(raw.count) bytes")
        }
        return digest
    }

    /// An idle ratio in parts per million; above 1,000,000 is malformed.
    func ratio() throws(WireError) -> UInt32 {
        let value = try uint32()
        guard value <= APILimits.ratioScale else {
            throw WireError(.valueOutOfRange, code: .protocolError,
                "field \(number) is a ratio in parts per million and must be at most 1000000, not \(value)")
        }
        return value
    }
}

/// Appends one element of a repeated field, refusing more than `APILimits.maxRepeatedElements`.
func appendBounded<T>(_ element: T, to array: inout [T], field: Field) throws(WireError) {
    guard array.count < APILimits.maxRepeatedElements else {
        throw WireError(.valueOutOfRange, code: .protocolError,
            "repeated field \(field.number) has more than \(APILimits.maxRepeatedElements) elements")
    }
    array.append(element)
}

// Encoders omit default values (wire.md §10.6 rule 5); these keep each `encode` to one line per field.
extension MessageWriter {
    mutating func put(_ field: Int, _ value: UInt64) {
        if value != 0 { writeVarint(field: field, value) }
    }

    mutating func put(_ field: Int, _ value: UInt32) {
        if value != 0 { writeVarint(field: field, UInt64(value)) }
    }

    mutating func put(_ field: Int, _ value: Bool) {
        if value { writeBool(field: field, true) }
    }

    mutating func put(_ field: Int, _ value: String) {
        if !value.isEmpty { writeString(field: field, value) }
    }

    mutating func put(_ field: Int, _ value: [UInt8]) {
        if !value.isEmpty { writeBytes(field: field, value) }
    }

    mutating func put(_ field: Int, _ value: SHA256Digest?) {
        if let value { writeBytes(field: field, value.bytes) }
    }

    mutating func put(_ field: Int, _ value: some WireEnum) {
        put(field, value.wireValue)
    }

    /// A nested message is written when present, even if empty.
    mutating func put(_ field: Int, _ value: (some WireMessage)?) {
        if let value { writeMessage(field: field, value) }
    }

    /// A value-like nested message (no presence semantics) is omitted when all its fields are
    /// default: readers see the same all-default value either way.
    mutating func putUnlessEmpty(_ field: Int, _ value: some WireMessage) {
        let bytes = value.serializedBytes()
        if !bytes.isEmpty { writeBytes(field: field, bytes) }
    }

    mutating func put(_ field: Int, _ values: [some WireMessage]) {
        for value in values { writeMessage(field: field, value) }
    }

    mutating func put(_ field: Int, _ values: [String]) {
        for value in values { writeString(field: field, value) }
    }
}
