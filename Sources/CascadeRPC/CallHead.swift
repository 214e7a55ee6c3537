public import CascadeWire

/// One metadata entry: a lower-case ASCII key and opaque bytes (rpc.md, "Call head").
public struct MetadataEntry: Hashable, Sendable, WireMessage {
    public var key: String
    public var value: [UInt8]

    public init(_ key: String, _ value: [UInt8]) {
        self.key = key
        self.value = value
    }

    public init(_ key: String, _ value: String) {
        self.init(key, Array(value.utf8))
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        key = ""
        value = []
        while let field = try reader.next() {
            switch field.number {
            case 1: key = try field.string()
            case 2: value = try field.bytes()
            default: continue
            }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        if !key.isEmpty { writer.writeString(field: 1, key) }
        if !value.isEmpty { writer.writeBytes(field: 2, value) }
    }
}

/// The HEADERS payload a client opens a call with.
public struct CallHead: Hashable, Sendable, WireMessage {
    public var method: String
    /// Microseconds until the deadline, from when the server receives the head; 0 = none.
    public var timeoutMicroseconds: UInt64
    public var metadata: [MetadataEntry]

    public init(method: String, timeoutMicroseconds: UInt64 = 0, metadata: [MetadataEntry] = []) {
        self.method = method
        self.timeoutMicroseconds = timeoutMicroseconds
        self.metadata = metadata
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init(method: "")
        while let field = try reader.next() {
            switch field.number {
            case 1: method = try field.string()
            case 2: timeoutMicroseconds = try field.uint64()
            case 3: metadata.append(try field.message())
            default: continue
            }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        if !method.isEmpty { writer.writeString(field: 1, method) }
        if timeoutMicroseconds != 0 { writer.writeVarint(field: 2, timeoutMicroseconds) }
        for entry in metadata { writer.writeMessage(field: 3, entry) }
    }
}

extension CallHead {
    /// The method and timeout of an encoded call head, with the metadata entries skipped, not
    /// decoded: a server looks the method up before it spends anything on the metadata
    /// (rpc.md §4.5), so an unknown method with 16 KiB of metadata costs one pass of the tags.
    static func methodAndTimeout(_ block: [UInt8]) throws(WireError) -> (method: String, timeoutMicroseconds: UInt64) {
        var reader = MessageReader(block)
        var method = ""
        var timeout: UInt64 = 0
        while let field = try reader.next() {
            switch field.number {
            case 1: method = try field.string()
            case 2: timeout = try field.uint64()
            default: continue
            }
        }
        return (method, timeout)
    }

    /// The schema rules of rpc.md §5.5: a method is present, metadata keys are 1-64 bytes of
    /// `[a-z0-9._-]`. Violations are answered with trailers-only INTERNAL.
    public func validate() throws(RPCError) {
        guard !method.isEmpty else { throw RPCError(.internal, "malformed call head: no method") }
        for entry in metadata {
            // The UTF-8 view is walked in place (no array per entry: a head may hold thousands).
            let key = entry.key.utf8
            let allowed = key.allSatisfy { byte in
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                    || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
            }
            guard (1...64).contains(key.count), allowed else {
                throw RPCError(.internal, "malformed call head: metadata key \"\(entry.key)\" is not 1-64 bytes of [a-z0-9._-]")
            }
        }
    }
}

/// The HEADERS payload a server may send before its first response message.
public struct ResponseHead: Hashable, Sendable, WireMessage {
    public var metadata: [MetadataEntry]

    public init(metadata: [MetadataEntry] = []) {
        self.metadata = metadata
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        metadata = []
        while let field = try reader.next() {
            if field.number == 3 { metadata.append(try field.message()) }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        for entry in metadata { writer.writeMessage(field: 3, entry) }
    }
}

/// The TRAILERS payload that ends every call the server completes.
public struct CallTrailers: Hashable, Sendable, WireMessage {
    public var code: RPCCode
    public var message: String
    public var metadata: [MetadataEntry]

    public static let maxMessageBytes = 1024

    /// The encoding of plain OK trailers, which end nearly every call.
    static let okBytes = CallTrailers().serializedBytes()

    public init(code: RPCCode = .ok, message: String = "", metadata: [MetadataEntry] = []) {
        self.code = code
        self.message = message
        self.metadata = metadata
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            switch field.number {
            case 1: code = RPCCode(rawValue: try field.uint32())
            case 2: message = try field.string()
            case 3: metadata.append(try field.message())
            default: continue
            }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        if code != .ok { writer.writeVarint(field: 1, UInt64(code.rawValue)) }
        if !message.isEmpty {
            // Longer messages are cut at a character boundary (rpc.md).
            var text = Substring(message)
            while text.utf8.count > Self.maxMessageBytes { text = text.dropLast() }
            writer.writeString(field: 2, String(text))
        }
        for entry in metadata { writer.writeMessage(field: 3, entry) }
    }
}
