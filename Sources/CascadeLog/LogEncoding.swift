#if canImport(Glibc)
import Glibc
#endif

/// Writes a record as one line of text or JSON. Nothing a value holds can end the line early,
/// move the cursor or colour a terminal: control characters are escaped in both formats.
public enum LogEncoding {
    /// The line (without its newline) in `format`.
    public static func line(_ record: LogRecord, format: LogFormat) -> String {
        switch format {
        case .text: text(record)
        case .json: json(record)
        }
    }

    /// `2025-06-01T12:00:00.123Z info cascade-coordinator[4242] tls: message key=value key2="a b"`
    public static func text(_ record: LogRecord) -> String {
        var line = timestamp(record.timeMilliseconds)
        line += " \(record.level.name) \(escapedText(record.program))[\(record.pid)] \(escapedText(record.component)): "
        line += escapedText(record.message)
        for field in record.fields {
            line += " \(key(field.key))=\(textValue(field.value))"
        }
        return line
    }

    /// `{"time":"2025-06-01T12:00:00.123Z","level":"info","program":"cascade-coordinator","pid":4242,
    /// "component":"tls","message":"...","key":"value"}`: the fields follow the fixed keys; a field
    /// named like one of them (or like an earlier field) gets a `field_` prefix or a number.
    public static func json(_ record: LogRecord) -> String {
        var line = "{\"time\":\"\(timestamp(record.timeMilliseconds))\",\"level\":\"\(record.level.name)\""
        line += ",\"program\":\(jsonString(record.program)),\"pid\":\(record.pid)"
        line += ",\"component\":\(jsonString(record.component)),\"message\":\(jsonString(record.message))"
        var used: Set<String> = ["time", "level", "program", "pid", "component", "message"]
        for field in record.fields {
            var name = key(field.key)
            if used.contains(name) { name = "field_" + name }
            var candidate = name
            var number = 2
            while used.contains(candidate) {
                candidate = "\(name)_\(number)"
                number += 1
            }
            used.insert(candidate)
            line += ",\(jsonString(candidate)):\(jsonString(field.value))"
        }
        return line + "}"
    }

    // MARK: - Time

    /// RFC 3339, UTC, milliseconds: `2025-06-01T12:00:00.123Z`.
    public static func timestamp(_ milliseconds: Int64) -> String {
        let seconds = milliseconds >= 0 ? milliseconds / 1000 : (milliseconds - 999) / 1000
        let millis = Int(milliseconds - seconds * 1000)
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        return pad(Int(parts.tm_year) + 1900, 4) + "-" + pad(Int(parts.tm_mon) + 1, 2) + "-" + pad(Int(parts.tm_mday), 2)
            + "T" + pad(Int(parts.tm_hour), 2) + ":" + pad(Int(parts.tm_min), 2) + ":" + pad(Int(parts.tm_sec), 2)
            + "." + pad(millis, 3) + "Z"
    }

    /// Now, in milliseconds since 1970 (the wall clock: it is what people compare with).
    public static func nowMilliseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }

    private static func pad(_ value: Int, _ width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }

    // MARK: - Escaping

    /// Characters that must never reach a terminal or a log line as they are: C0 controls
    /// (newline, ESC...), DEL, C1 controls (U+0080–U+009F, where U+009B is a CSI on some
    /// terminals), the line and paragraph separators, and the bidirectional overrides and
    /// isolates that make text display in another order than it reads.
    public static func mustEscape(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F, 0x2028, 0x2029, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: true
        default: false
        }
    }

    /// `text` with every character of `mustEscape` written as `\n`, `\r`, `\t`, `\xHH` or
    /// `\u{HHHH}`; everything else as it is. For messages, and for any string an operator's
    /// terminal shows (the `cascadectl` tables use it too).
    public static func escapedText(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: mustEscape) else { return text }
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if mustEscape(scalar) {
                out.append(contentsOf: escape(scalar).unicodeScalars)
            } else {
                out.append(scalar)
            }
        }
        return String(out)
    }

    private static func escape(_ scalar: Unicode.Scalar) -> String {
        switch scalar {
        case "\n": return "\\n"
        case "\r": return "\\r"
        case "\t": return "\\t"
        default:
            let hex = String(scalar.value, radix: 16, uppercase: true)
            if scalar.value < 0x100 { return "\\x" + (hex.count < 2 ? "0" + hex : hex) }
            return "\\u{\(hex)}"
        }
    }

    /// A field value in the text format: bare when it is a plain word, else in double quotes
    /// with `"` and `\` escaped as well.
    static func textValue(_ value: String) -> String {
        let plain = !value.isEmpty && value.unicodeScalars.allSatisfy { scalar in
            !mustEscape(scalar) && scalar != " " && scalar != "\"" && scalar != "=" && scalar != "\\"
        }
        if plain { return value }
        var out = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            default: out += mustEscape(scalar) ? escape(scalar) : String(scalar)
            }
        }
        return out + "\""
    }

    /// A key as code chose it, with anything but letters, digits, `_`, `-` and `.` replaced by `_`.
    static func key(_ key: String) -> String {
        guard !key.isEmpty else { return "_" }
        let allowed = key.unicodeScalars.allSatisfy { scalar in
            switch scalar {
            case "a"..."z", "A"..."Z", "0"..."9", "_", "-", ".": true
            default: false
            }
        }
        if allowed { return key }
        return String(String.UnicodeScalarView(key.unicodeScalars.map { scalar -> Unicode.Scalar in
            switch scalar {
            case "a"..."z", "A"..."Z", "0"..."9", "_", "-", ".": scalar
            default: "_"
            }
        }))
    }

    /// A JSON string (RFC 8259 §7), quotes included: `"` and `\` escaped, control characters as
    /// `\n`, `\r`, `\t`, `\b`, `\f` or `\u00XX`, and the other characters of `mustEscape` as
    /// `\uXXXX` too (JSON allows any character escaped), so a line shown raw is safe as well.
    public static func jsonString(_ text: String) -> String {
        var out = "\""
        out.reserveCapacity(text.utf8.count + 2)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if mustEscape(scalar) {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
