/// Human-readable forms of sizes, durations, percentages and times, the same in every program.
public enum HumanFormat {
    /// Binary units with one decimal: `512 B`, `1.5 KiB`, `6.2 MiB`, `1.0 GiB`.
    public static func bytes<T: BinaryInteger>(_ count: T) -> String {
        let value = Int64(clamping: count)
        if value < 0 { return "-" + bytes(value == .min ? Int64.max : -value) }
        if value < 1024 { return "\(value) B" }
        let units = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
        var scaled = Double(value) / 1024
        var unit = 0
        // Move up while the rounded figure would read 1024.0 or more.
        while (scaled * 10).rounded() >= 10240, unit < units.count - 1 {
            scaled /= 1024
            unit += 1
        }
        return oneDecimal(scaled) + " " + units[unit]
    }

    /// A compact duration: `250ms`, `4s`, `1m05s`, `2h03m`, `3d04h` (whole seconds from 1s up).
    public static func duration(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        if seconds < 0 || (seconds == 0 && attoseconds < 0) { return "-" + Self.duration(.zero - duration) }
        let milliseconds = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        if milliseconds < 1000 { return milliseconds == 0 ? "0s" : "\(milliseconds)ms" }
        let total = (milliseconds + 500) / 1000
        switch total {
        case ..<60: return "\(total)s"
        case ..<3600: return "\(total / 60)m" + twoDigits(total % 60) + "s"
        case ..<86400: return "\(total / 3600)h" + twoDigits(total / 60 % 60) + "m"
        default: return "\(total / 86400)d" + twoDigits(total / 3600 % 24) + "h"
        }
    }

    /// A duration given in seconds.
    public static func duration(seconds: Double) -> String {
        guard seconds.isFinite else { return "?" }
        return duration(.nanoseconds(Int64((seconds * 1e9).rounded())))
    }

    /// A percentage from 0–100 with at most one decimal: `5%`, `12.5%`, `100%`.
    public static func percent(_ value: Double) -> String {
        guard value.isFinite else { return "?%" }
        let text = oneDecimal(value)
        return (text.hasSuffix(".0") ? String(text.dropLast(2)) : text) + "%"
    }

    /// `part` of `total` as a percentage; `0%` when the total is zero.
    public static func percent<T: BinaryInteger>(_ part: T, of total: T) -> String {
        total == 0 ? "0%" : percent(Double(part) * 100 / Double(total))
    }

    /// ISO 8601 in UTC, whole seconds: `2025-03-04T05:06:07Z`.
    public static func timestamp(epochSeconds: Int64) -> String {
        let days = epochSeconds >= 0 ? epochSeconds / 86400 : (epochSeconds - 86399) / 86400
        let secondOfDay = epochSeconds - days * 86400
        let (year, month, day) = civilDate(daysSinceEpoch: days)
        let yearText = String(year).leftPadding(to: 4).replacingSpaces(with: "0")
        return yearText + "-" + twoDigits(month) + "-" + twoDigits(day) + "T"
            + twoDigits(secondOfDay / 3600) + ":" + twoDigits(secondOfDay / 60 % 60) + ":" + twoDigits(secondOfDay % 60) + "Z"
    }

    /// `text` safe to print on a terminal: control characters (C0 but tab, DEL, C1) become
    /// visible escapes such as `\x1b`, so text an agent chose (a version, a fault detail) cannot
    /// move the cursor, recolour or rewrite an operator's screen, or start a new line.
    public static func printable(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isControl) else { return text }
        var result = ""
        for scalar in text.unicodeScalars {
            if isControl(scalar) {
                let hex = String(scalar.value, radix: 16)
                result += scalar.value <= 0xFF ? "\\x" + String(repeating: "0", count: 2 - hex.count) + hex : "\\u{\(hex)}"
            } else {
                result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    private static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        (scalar.value < 0x20 && scalar != "\t") || (0x7F...0x9F).contains(scalar.value)
    }

    /// RFC 3339 in UTC with milliseconds: `2025-03-04T05:06:07.089Z` (JSON output's one time form).
    public static func timestamp(epochMilliseconds: Int64) -> String {
        let seconds = epochMilliseconds >= 0 ? epochMilliseconds / 1000 : (epochMilliseconds - 999) / 1000
        let millis = epochMilliseconds - seconds * 1000
        let whole = timestamp(epochSeconds: seconds)
        return whole.dropLast() + "." + String(millis).leftPadding(to: 3).replacingSpaces(with: "0") + "Z"
    }

    /// How long ago (or ahead) a moment is: `just now`, `5s ago`, `3m20s ago`, `in 2h05m`.
    public static func relative(epochSeconds: Int64, now: Int64) -> String {
        let delta = now - epochSeconds
        if delta == 0 { return "just now" }
        let text = duration(.seconds(abs(delta)))
        return delta > 0 ? text + " ago" : "in " + text
    }

    /// Year, month, day from days since 1970-01-01 (proleptic Gregorian; Howard Hinnant's algorithm).
    static func civilDate(daysSinceEpoch: Int64) -> (Int64, Int64, Int64) {
        let z = daysSinceEpoch + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// `x.y` rounded to tenths without Foundation's formatters.
    static func oneDecimal(_ value: Double) -> String {
        let tenths = Int64((abs(value) * 10).rounded())
        return (value < 0 && tenths != 0 ? "-" : "") + "\(tenths / 10).\(tenths % 10)"
    }

    private static func twoDigits<T: BinaryInteger>(_ value: T) -> String {
        value < 10 ? "0\(value)" : "\(value)"
    }
}

extension String {
    fileprivate func replacingSpaces(with character: Character) -> String {
        String(map { $0 == " " ? character : $0 })
    }
}
