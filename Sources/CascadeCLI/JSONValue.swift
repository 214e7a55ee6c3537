/// A JSON value for `--json` output: objects keep their key order, so output is deterministic.
public enum JSONValue: Sendable, Equatable {
    /// `null`.
    case null
    /// `true` or `false`.
    case bool(Bool)
    /// An integer, printed exactly (byte counts beyond 2^53 stay exact).
    case int(Int64)
    /// A floating-point number; NaN and infinities print as `null`.
    case double(Double)
    /// A string, escaped on output.
    case string(String)
    /// An array.
    case array([JSONValue])
    /// An object, keys in this order.
    case object([Member])

    /// One key and value of an object.
    public struct Member: Sendable, Equatable {
        /// The key.
        public var key: String
        /// The value.
        public var value: JSONValue

        /// A member.
        public init(_ key: String, _ value: JSONValue) {
            self.key = key
            self.value = value
        }
    }

    /// An integer value from any integer type.
    public static func int<T: BinaryInteger>(_ value: T) -> JSONValue {
        .int(Int64(clamping: value))
    }

    /// A string, or `null` for nil.
    public static func string(_ value: String?) -> JSONValue {
        value.map { .string($0) } ?? .null
    }

    /// An object from key-value pairs, in order (for building objects in loops).
    public static func object(_ pairs: [(String, JSONValue)]) -> JSONValue {
        .object(pairs.map { Member($0.0, $0.1) })
    }

    /// The value of an object's key (the last one if repeated), or nil.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.last { $0.key == key }?.value
    }

    /// The JSON text: `pretty` indents two spaces per level; compact has no spaces at all.
    public func encoded(pretty: Bool = false) -> String {
        var output = ""
        JSONWriter(pretty: pretty).write(self, indent: 0, to: &output)
        return output
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByNilLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(nilLiteral: ()) { self = .null }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    /// Dictionary literals keep their written order.
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(elements.map { Member($0.0, $0.1) })
    }
}

/// Serialises JSON values; separate from the enum so the recursion stays in one place.
struct JSONWriter {
    let pretty: Bool

    func write(_ value: JSONValue, indent: Int, to output: inout String) {
        switch value {
        case .null: output += "null"
        case .bool(let flag): output += flag ? "true" : "false"
        case .int(let number): output += String(number)
        case .double(let number): output += Self.number(number)
        case .string(let text): Self.writeString(text, to: &output)
        case .array(let items):
            writeContainer(open: "[", close: "]", count: items.count, indent: indent, to: &output) { index, output in
                write(items[index], indent: indent + 1, to: &output)
            }
        case .object(let members):
            writeContainer(open: "{", close: "}", count: members.count, indent: indent, to: &output) { index, output in
                Self.writeString(members[index].key, to: &output)
                output += pretty ? ": " : ":"
                write(members[index].value, indent: indent + 1, to: &output)
            }
        }
    }

    private func writeContainer(open: String, close: String, count: Int, indent: Int, to output: inout String,
                                element: (Int, inout String) -> Void) {
        output += open
        guard count > 0 else { return output += close }
        for index in 0..<count {
            if index > 0 { output += "," }
            if pretty { output += "\n" + String(repeating: "  ", count: indent + 1) }
            element(index, &output)
        }
        if pretty { output += "\n" + String(repeating: "  ", count: indent) }
        output += close
    }

    /// Integral values print without a fraction; others use Swift's shortest round-trip form.
    static func number(_ value: Double) -> String {
        guard value.isFinite else { return "null" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(value)
    }

    /// Quotes and escapes per RFC 8259; U+2028/2029 too, so the output is also safe JavaScript.
    static func writeString(_ text: String, to output: inout String) {
        output += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            case "\u{08}": output += "\\b"
            case "\u{0C}": output += "\\f"
            case "\u{00}"..."\u{1F}", "\u{7F}", "\u{2028}", "\u{2029}":
                let hex = String(scalar.value, radix: 16)
                output += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: output.unicodeScalars.append(scalar)
            }
        }
        output += "\""
    }
}
