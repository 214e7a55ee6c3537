import CascadeWire
import Testing

/// A field in the `fields` notation of encoding.txt.
struct SpecField: Equatable, CustomStringConvertible {
    indirect enum Value: Equatable {
        case varint(UInt64), sint(Int64), bool(Bool)
        case fixed64(UInt64), double(Double), fixed32(UInt32)
        case string(String), bytes([UInt8]), packed([UInt64])
        case message([SpecField])
    }

    var number: Int
    var value: Value

    var description: String { "\(number):\(value)" }

    struct ParseError: Error, CustomStringConvertible {
        var description: String
    }

    /// Parses "1:varint=3;2:message={...}" or "-".
    static func parseList(_ text: String) throws -> [SpecField] {
        if text == "-" { return [] }
        var parser = Parser(chars: Array(text))
        let fields = try parser.fields()
        guard parser.position == parser.chars.count else {
            throw ParseError(description: "trailing text at \(parser.position) in \(text)")
        }
        return fields
    }

    private struct Parser {
        let chars: [Character]
        var position = 0

        var peek: Character? { position < chars.count ? chars[position] : nil }

        mutating func take(while predicate: (Character) -> Bool) -> String {
            var out = ""
            while let c = peek, predicate(c) {
                out.append(c)
                position += 1
            }
            return out
        }

        mutating func expect(_ c: Character) throws {
            guard peek == c else { throw ParseError(description: "expected \(c) at \(position) in \(String(chars))") }
            position += 1
        }

        mutating func fields() throws -> [SpecField] {
            var out: [SpecField] = []
            if peek == "}" || peek == nil { return out }
            while true {
                out.append(try field())
                guard peek == ";" else { return out }
                position += 1
            }
        }

        mutating func field() throws -> SpecField {
            guard let number = Int(take(while: \.isNumber)) else {
                throw ParseError(description: "expected field number at \(position)")
            }
            try expect(":")
            let kind = take { $0.isLetter || $0.isNumber }
            try expect("=")
            let value: Value
            switch kind {
            case "message":
                try expect("{")
                value = .message(try fields())
                try expect("}")
            case "string":
                try expect("\"")
                let text = take { $0 != "\"" }
                try expect("\"")
                value = .string(text)
            default:
                let raw = take { $0 != ";" && $0 != "}" }
                value = try scalar(kind, raw)
            }
            return SpecField(number: number, value: value)
        }

        func scalar(_ kind: String, _ raw: String) throws -> Value {
            let bad = ParseError(description: "bad \(kind) value \(raw)")
            switch kind {
            case "varint": guard let v = UInt64(raw) else { throw bad }; return .varint(v)
            case "sint": guard let v = Int64(raw) else { throw bad }; return .sint(v)
            case "bool": guard raw == "true" || raw == "false" else { throw bad }; return .bool(raw == "true")
            case "fixed64": guard let v = UInt64(raw) else { throw bad }; return .fixed64(v)
            case "double": guard let v = Double(raw) else { throw bad }; return .double(v)
            case "fixed32": guard let v = UInt32(raw) else { throw bad }; return .fixed32(v)
            case "bytes": guard let v = Hex.decode(raw) else { throw bad }; return .bytes(v)
            case "packed":
                if raw == "-" { return .packed([]) }
                let values = raw.split(separator: ",").compactMap { UInt64($0) }
                guard values.count == raw.split(separator: ",").count else { throw bad }
                return .packed(values)
            default: throw ParseError(description: "unknown kind \(kind)")
            }
        }
    }

    // MARK: Writing and reading with the library

    static func write(_ fields: [SpecField], to writer: inout MessageWriter) {
        for field in fields {
            let n = field.number
            switch field.value {
            case .varint(let v): writer.writeVarint(field: n, v)
            case .sint(let v): writer.writeSInt64(field: n, v)
            case .bool(let v): writer.writeBool(field: n, v)
            case .fixed64(let v): writer.writeFixed64(field: n, v)
            case .double(let v): writer.writeDouble(field: n, v)
            case .fixed32(let v): writer.writeFixed32(field: n, v)
            case .string(let v): writer.writeString(field: n, v)
            case .bytes(let v): writer.writeBytes(field: n, v)
            case .packed(let v): writer.writePackedVarints(field: n, v)
            case .message(let nested): writer.writeMessage(field: n) { write(nested, to: &$0) }
            }
        }
    }

    static func encode(_ fields: [SpecField]) -> [UInt8] {
        var writer = MessageWriter()
        write(fields, to: &writer)
        return writer.bytes
    }

    /// Interprets a decoded field the way `like` says it is typed.
    static func interpret(_ field: Field, like spec: SpecField, known: Set<Int>?) throws(WireError) -> SpecField {
        let value: Value
        switch spec.value {
        case .varint: value = .varint(try field.uint64())
        case .sint: value = .sint(try field.sint64())
        case .bool: value = .bool(try field.bool())
        case .fixed64: value = .fixed64(try field.fixed64())
        case .double: value = .double(try field.double())
        case .fixed32: value = .fixed32(try field.fixed32())
        case .string: value = .string(try field.string())
        case .bytes: value = .bytes(try field.bytes())
        case .packed:
            var values: [UInt64] = []
            try field.appendVarints(to: &values)
            value = .packed(values)
        case .message(let nestedSpec):
            var reader = try field.messageReader()
            value = .message(try read(&reader, like: nestedSpec, known: known))
        }
        return SpecField(number: field.number, value: value)
    }

    /// Reads all fields, keeping only `known` numbers (all if nil), and
    /// interprets each like the spec field at the same position. Extra or
    /// missing fields show up as a length mismatch in the caller's comparison.
    static func read(_ reader: inout MessageReader, like spec: [SpecField], known: Set<Int>?) throws(WireError) -> [SpecField] {
        var out: [SpecField] = []
        while let field = try reader.next() {
            if let known, !known.contains(field.number) { continue }
            if out.count < spec.count, spec[out.count].number == field.number {
                out.append(try interpret(field, like: spec[out.count], known: known))
            } else {
                out.append(SpecField(number: field.number, value: .bytes([])))  // forces a mismatch
            }
        }
        return out
    }
}

/// Reads a message generically, interpreting only the fields named in `readAs`.
func readAs(_ reader: inout MessageReader, _ readAs: [Int: String]) throws(WireError) {
    while let field = try reader.next() {
        switch readAs[field.number] {
        case "string": _ = try field.string()
        case "packed":
            var values: [UInt64] = []
            try field.appendVarints(to: &values)
        case "varint": _ = try field.uint64()
        case "message":
            var nested = try field.messageReader()
            try CascadeWireTests.readAs(&nested, readAs)
        default: break
        }
    }
}

/// All fields of a message, raw.
func rawFields(_ bytes: [UInt8]) throws(WireError) -> [Field] {
    var reader = MessageReader(bytes)
    var fields: [Field] = []
    while let field = try reader.next() { fields.append(field) }
    return fields
}

/// Re-encodes raw fields verbatim.
func encodeRaw(_ fields: [Field]) -> [UInt8] {
    var writer = MessageWriter()
    for field in fields {
        switch field.value {
        case .varint(let v): writer.writeVarint(field: field.number, v)
        case .fixed64(let v): writer.writeFixed64(field: field.number, v)
        case .fixed32(let v): writer.writeFixed32(field: field.number, v)
        case .bytes(let v): writer.writeBytes(field: field.number, v)
        }
    }
    return writer.bytes
}
