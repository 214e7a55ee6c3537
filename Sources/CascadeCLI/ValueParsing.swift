/// Parsers for option values; each returns nil for text it does not accept.
public enum ValueParsing {
    /// A duration: `500ms`, `30s`, `5m`, `1h`, `1d`, combined (`1m30s`), decimals (`1.5s`) or plain seconds (`30`).
    public static func duration(_ text: String) -> Duration? {
        let trimmed = text.trimmingSpaces
        guard !trimmed.isEmpty else { return nil }
        if let seconds = Double(trimmed), seconds.isFinite, seconds >= 0, trimmed.first != "+" {
            return .nanoseconds(Int64((seconds * 1e9).rounded()))
        }
        var total = 0.0
        var rest = Substring(trimmed)
        while !rest.isEmpty {
            let number = rest.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
            guard !number.isEmpty, let value = Double(number) else { return nil }
            rest = rest.dropFirst(number.count)
            let unit = rest.prefix { $0.isASCII && $0.isLetter }
            guard let scale = durationUnits[String(unit)] else { return nil }
            rest = rest.dropFirst(unit.count)
            total += value * scale
        }
        guard total.isFinite, total < 1e10 else { return nil }
        return .nanoseconds(Int64((total * 1e9).rounded()))
    }

    /// A percentage from 0 to 100: `5%`, `5`, `12.5%`.
    public static func percentage(_ text: String) -> Double? {
        var trimmed = text.trimmingSpaces
        if trimmed.hasSuffix("%") { trimmed.removeLast() }
        guard let value = Double(trimmed), trimmed.first != "+", value.isFinite, (0...100).contains(value) else { return nil }
        return value
    }

    /// A decimal integer (optionally signed), no spaces or underscores.
    public static func integer(_ text: String) -> Int? {
        Int(text.trimmingSpaces)
    }

    /// A boolean as environment variables and config files spell it: true/false, yes/no, on/off, 1/0.
    public static func boolean(_ text: String) -> Bool? {
        switch text.trimmingSpaces.lowercased() {
        case "true", "yes", "on", "1": true
        case "false", "no", "off", "0": false
        default: nil
        }
    }

    /// Comma-separated items, spaces trimmed, empty items dropped.
    public static func list(_ text: String) -> [String] {
        text.split(separator: ",").map { String($0).trimmingSpaces }.filter { !$0.isEmpty }
    }

    private static let durationUnits: [String: Double] = [
        "ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400,
    ]
}

extension String {
    /// The string without leading or trailing spaces and tabs (no Foundation needed).
    var trimmingSpaces: String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" }
        guard let start = firstIndex(where: { !isSpace($0) }),
              let end = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[start...end])
    }
}
