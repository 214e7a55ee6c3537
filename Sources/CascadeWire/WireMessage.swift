/// A message type with a tagged encoding (wire.md §10). RPC and API messages
/// conform by reading fields by number (ignoring unknown ones) and by writing
/// only non-default values.
public protocol WireMessage: Sendable {
    /// Decodes from `reader`, consuming it to the end. Unknown fields must be skipped.
    init(from reader: inout MessageReader) throws(WireError)
    /// Writes all non-default fields.
    func encode(to writer: inout MessageWriter)
}

extension WireMessage {
    public init(serializedBytes bytes: [UInt8]) throws(WireError) {
        var reader = MessageReader(bytes)
        try self.init(from: &reader)
    }

    public init(serializedBytes bytes: ArraySlice<UInt8>) throws(WireError) {
        var reader = MessageReader(bytes)
        try self.init(from: &reader)
    }

    public func serializedBytes() -> [UInt8] {
        // Most messages are small: starting with room saves the array's first regrowths.
        var writer = MessageWriter(reservingCapacity: 128)
        encode(to: &writer)
        return writer.bytes
    }

    /// The encoding after `headroom` zero bytes (see `MessageWriter.init(headroom:)`).
    public func serializedBytes(headroom: Int) -> [UInt8] {
        var writer = MessageWriter(headroom: headroom, reservingCapacity: 128)
        encode(to: &writer)
        return writer.bytes
    }
}
