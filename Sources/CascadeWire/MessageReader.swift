/// Iterates the fields of a tagged message (wire.md §10) without copying.
///
/// Total over any input: every byte sequence either yields fields or throws a
/// `WireError`; lengths are checked against the remaining bytes before use.
/// Callers skip unknown field numbers simply by ignoring them: `next()` has
/// already stepped over the field using its wire type.
public struct MessageReader: Sendable {
    private let bytes: ArraySlice<UInt8>
    private var index: Int
    /// Nesting depth of this message; the top level is 1.
    public let depth: Int

    public init(_ bytes: [UInt8]) {
        self.init(bytes[...])
    }

    public init(_ bytes: ArraySlice<UInt8>, depth: Int = 1) {
        self.bytes = bytes
        self.index = bytes.startIndex
        self.depth = depth
    }

    /// Bytes consumed so far (the offset of the next field).
    public var offset: Int { index - bytes.startIndex }

    public var isAtEnd: Bool { index >= bytes.endIndex }

    /// The next field, or nil at the end of the message.
    public mutating func next() throws(WireError) -> Field? {
        guard index < bytes.endIndex else { return nil }
        let fieldOffset = offset
        let key = try Varint.decode(bytes, at: &index)
        let number = key >> 3
        guard number >= 1 && number <= UInt64(WireLimits.maxFieldNumber) else {
            throw WireError.malformed(.invalidFieldNumber,
                "field at offset \(fieldOffset) has number \(number), outside the legal range 1...536870911")
        }
        let field = Int(number)
        let remaining = bytes.endIndex - index
        let value: FieldValue
        switch key & 7 {
        case 0:
            value = .varint(try Varint.decode(bytes, at: &index))
        case 1:
            guard remaining >= 8 else { throw truncated(field, needs: 8, remaining) }
            value = .fixed64(readLE64(at: index))
            index += 8
        case 2:
            let length = try Varint.decode(bytes, at: &index)
            let left = bytes.endIndex - index
            guard length <= UInt64(left) else { throw truncated(field, needs: length, left) }
            let end = index + Int(length)
            value = .bytes(bytes[index..<end])
            index = end
        case 5:
            guard remaining >= 4 else { throw truncated(field, needs: 4, remaining) }
            value = .fixed32(UInt32(truncatingIfNeeded: readLE64Partial(at: index, count: 4)))
            index += 4
        default:
            throw WireError.malformed(.invalidWireType,
                "field \(field) at offset \(fieldOffset) uses wire type \(key & 7), which is not 0, 1, 2 or 5")
        }
        return Field(number: field, value: value, depth: depth)
    }

    private func truncated(_ field: Int, needs: some BinaryInteger, _ left: Int) -> WireError {
        WireError.malformed(.truncated,
            "field \(field) needs \(needs) bytes but only \(left) remain in the \(bytes.count)-byte message")
    }

    private func readLE64(at i: Int) -> UInt64 { readLE64Partial(at: i, count: 8) }

    private func readLE64Partial(at i: Int, count: Int) -> UInt64 {
        var v: UInt64 = 0
        for k in 0..<count { v |= UInt64(bytes[i + k]) << (8 * UInt64(k)) }
        return v
    }
}

/// The raw value of one field, by wire type.
public enum FieldValue: Sendable, Hashable {
    case varint(UInt64)
    case fixed64(UInt64)
    case fixed32(UInt32)
    /// LENGTH_DELIMITED contents: a view into the message's bytes.
    case bytes(ArraySlice<UInt8>)

    public var wireType: WireType {
        switch self {
        case .varint: .varint
        case .fixed64: .fixed64
        case .fixed32: .fixed32
        case .bytes: .lengthDelimited
        }
    }
}

/// One decoded field plus typed accessors. Each accessor throws
/// `wrong-wire-type` if the field was not sent with the wire type it needs.
public struct Field: Sendable, Hashable {
    public let number: Int
    public let value: FieldValue
    // Depth of the message containing this field, for the nesting limit.
    let depth: Int

    public init(number: Int, value: FieldValue) {
        self.init(number: number, value: value, depth: 1)
    }

    init(number: Int, value: FieldValue, depth: Int) {
        self.number = number
        self.value = value
        self.depth = depth
    }

    public static func == (a: Field, b: Field) -> Bool { a.number == b.number && a.value == b.value }
    public func hash(into hasher: inout Hasher) {
        hasher.combine(number)
        hasher.combine(value)
    }

    public var wireType: WireType { value.wireType }

    public func uint64() throws(WireError) -> UInt64 {
        guard case .varint(let v) = value else { throw wrongType(.varint, "an unsigned integer") }
        return v
    }

    public func uint32() throws(WireError) -> UInt32 {
        let v = try uint64()
        guard let narrow = UInt32(exactly: v) else { throw outOfRange(v, "UInt32") }
        return narrow
    }

    /// Zigzag-decoded signed integer.
    public func sint64() throws(WireError) -> Int64 {
        Varint.unzigzag(try uint64())
    }

    public func sint32() throws(WireError) -> Int32 {
        let v = try sint64()
        guard let narrow = Int32(exactly: v) else { throw outOfRange(v, "Int32") }
        return narrow
    }

    /// Any nonzero varint is true (lenient, like other tagged formats).
    public func bool() throws(WireError) -> Bool {
        try uint64() != 0
    }

    public func fixed64() throws(WireError) -> UInt64 {
        guard case .fixed64(let v) = value else { throw wrongType(.fixed64, "a fixed64") }
        return v
    }

    public func fixed32() throws(WireError) -> UInt32 {
        guard case .fixed32(let v) = value else { throw wrongType(.fixed32, "a fixed32") }
        return v
    }

    public func double() throws(WireError) -> Double {
        guard case .fixed64(let v) = value else { throw wrongType(.fixed64, "a double") }
        return Double(bitPattern: v)
    }

    public func float() throws(WireError) -> Float {
        guard case .fixed32(let v) = value else { throw wrongType(.fixed32, "a float") }
        return Float(bitPattern: v)
    }

    /// The LENGTH_DELIMITED contents without copying.
    public func byteSlice() throws(WireError) -> ArraySlice<UInt8> {
        guard case .bytes(let v) = value else { throw wrongType(.lengthDelimited, "bytes") }
        return v
    }

    public func bytes() throws(WireError) -> [UInt8] {
        Array(try byteSlice())
    }

    /// UTF-8 text; invalid UTF-8 is an error (never silently replaced).
    public func string() throws(WireError) -> String {
        let raw = try byteSlice()
        guard let text = String(validating: raw, as: UTF8.self) else {
            throw WireError.malformed(.invalidUTF8, "field \(number) is not valid UTF-8 but must be a string")
        }
        return text
    }

    /// A reader over a nested message, enforcing the depth limit.
    public func messageReader() throws(WireError) -> MessageReader {
        let raw = try byteSlice()
        guard depth < WireLimits.maxMessageDepth else {
            throw WireError.malformed(.nestingTooDeep,
                "nested message in field \(number) would be at depth \(depth + 1), beyond the limit of \(WireLimits.maxMessageDepth)")
        }
        return MessageReader(raw, depth: depth + 1)
    }

    public func message<M: WireMessage>(_ type: M.Type = M.self) throws(WireError) -> M {
        var reader = try messageReader()
        return try M(from: &reader)
    }

    /// Appends a repeated varint field's values, accepting both the packed form
    /// (LENGTH_DELIMITED) and the one-per-field form (VARINT).
    public func appendVarints(to values: inout [UInt64]) throws(WireError) {
        switch value {
        case .varint(let v):
            values.append(v)
        case .bytes(let packed):
            var i = packed.startIndex
            while i < packed.endIndex {
                values.append(try Varint.decode(packed, at: &i))
            }
        default:
            throw wrongType(.lengthDelimited, "a repeated integer")
        }
    }

    /// Like `appendVarints`, zigzag-decoding each value.
    public func appendSInt64s(to values: inout [Int64]) throws(WireError) {
        var raw: [UInt64] = []
        try appendVarints(to: &raw)
        values.append(contentsOf: raw.map(Varint.unzigzag))
    }

    private func wrongType(_ expected: WireType, _ what: String) -> WireError {
        WireError.malformed(.wrongWireType,
            "field \(number) has wire type \(wireType) but \(what) needs \(expected)")
    }

    private func outOfRange(_ value: some BinaryInteger, _ type: String) -> WireError {
        WireError.malformed(.valueOutOfRange, "field \(number) value \(value) does not fit in \(type)")
    }
}
