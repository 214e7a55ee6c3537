/// Writes the Prometheus text exposition format, version 0.0.4
/// (https://prometheus.io/docs/instrumenting/exposition_formats/): per family a `# HELP` and a
/// `# TYPE` line, then its samples, one per line, all of a family together.
///
/// Names are checked (a bad name is a programming error, so it traps); label values are
/// escaped as the format says (`\\`, `\"`, `\n`), and any other control character is replaced
/// by U+FFFD, since the format has no escape for it and a terminal showing a scrape must not
/// act on it. Families are written whole by one call each, so they cannot interleave; a name
/// written twice is skipped the second time (the format allows a family once).
public struct ExpositionWriter: Sendable {
    /// The Content-Type of a scrape in this format.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    public enum Kind: String, Sendable {
        case counter, gauge, histogram, untyped
    }

    /// One line of a family: an optional name suffix (`_bucket`, `_sum`, `_count`), labels, value.
    public struct Sample: Sendable {
        public var suffix: String
        public var labels: [(name: String, value: String)]
        public var value: Double

        public init(suffix: String = "", labels: [(name: String, value: String)] = [], value: Double) {
            self.suffix = suffix
            self.labels = labels
            self.value = value
        }
    }

    public private(set) var text = ""
    private var written: Set<String> = []

    public init() {}

    /// The exposition as bytes (UTF-8).
    public var bytes: [UInt8] { Array(text.utf8) }

    /// Writes one family. Skipped (and false) when a family of that name was already written.
    @discardableResult
    public mutating func family(_ name: String, _ kind: Kind, help: String, samples: [Sample]) -> Bool {
        precondition(Self.isValidMetricName(name), "\"\(name)\" is not a valid metric name")
        guard written.insert(name).inserted else { return false }
        text += "# HELP \(name) \(Self.escapeHelp(help))\n# TYPE \(name) \(kind.rawValue)\n"
        for sample in samples {
            text += name
            text += sample.suffix
            if !sample.labels.isEmpty {
                text += "{"
                for (index, label) in sample.labels.enumerated() {
                    precondition(Self.isValidLabelName(label.name), "\"\(label.name)\" is not a valid label name")
                    if index > 0 { text += "," }
                    text += label.name
                    text += "=\""
                    text += Self.escapeLabelValue(label.value)
                    text += "\""
                }
                text += "}"
            }
            text += " "
            text += Self.format(sample.value)
            text += "\n"
        }
        return true
    }

    /// A family of one unlabelled counter.
    public mutating func counter(_ name: String, help: String, _ value: Double) {
        family(name, .counter, help: help, samples: [Sample(value: value)])
    }

    /// A family of one unlabelled gauge.
    public mutating func gauge(_ name: String, help: String, _ value: Double) {
        family(name, .gauge, help: help, samples: [Sample(value: value)])
    }

    /// A labelled family from (label values, value) pairs, in the order given.
    public mutating func family(_ name: String, _ kind: Kind, help: String, labels: [String], values: [([String], Double)]) {
        family(name, kind, help: help, samples: values.map { Sample(labels: Self.pairs(labels, $0.0), value: $0.1) })
    }

    /// A counter family from a `LabeledCounter`.
    public mutating func counter(_ name: String, help: String, _ counter: LabeledCounter) {
        family(name, .counter, help: help, labels: counter.labelNames, values: counter.snapshot.map { ($0.labels, Double($0.value)) })
    }

    /// A histogram family: per series its cumulative buckets (`le`), `+Inf`, `_sum` and `_count`.
    public mutating func histogram(_ name: String, help: String, _ histogram: LabeledHistogram) {
        var samples: [Sample] = []
        for series in histogram.snapshot {
            let labels = Self.pairs(histogram.labelNames, series.labels)
            var cumulative: UInt64 = 0
            for (bound, count) in zip(histogram.bounds, series.counts) {
                cumulative += count
                samples.append(Sample(suffix: "_bucket", labels: labels + [("le", Self.format(bound))], value: Double(cumulative)))
            }
            samples.append(Sample(suffix: "_bucket", labels: labels + [("le", "+Inf")], value: Double(series.count)))
            samples.append(Sample(suffix: "_sum", labels: labels, value: series.sum))
            samples.append(Sample(suffix: "_count", labels: labels, value: Double(series.count)))
        }
        family(name, .histogram, help: help, samples: samples)
    }

    static func pairs(_ names: [String], _ values: [String]) -> [(name: String, value: String)] {
        precondition(names.count == values.count, "\(values.count) label values for the labels \(names)")
        return zip(names, values).map { ($0, $1) }
    }

    // MARK: - The format's rules

    /// `[a-zA-Z_:][a-zA-Z0-9_:]*`
    public static func isValidMetricName(_ name: String) -> Bool {
        guard let first = name.utf8.first, isLetter(first) || first == UInt8(ascii: "_") || first == UInt8(ascii: ":") else { return false }
        return name.utf8.allSatisfy { isLetter($0) || isDigit($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ":") }
    }

    /// `[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__` (reserved).
    public static func isValidLabelName(_ name: String) -> Bool {
        guard let first = name.utf8.first, isLetter(first) || first == UInt8(ascii: "_"), !name.hasPrefix("__") else { return false }
        return name.utf8.allSatisfy { isLetter($0) || isDigit($0) || $0 == UInt8(ascii: "_") }
    }

    /// Backslash, double quote and line feed escaped; other control characters replaced.
    public static func escapeLabelValue(_ value: String) -> String {
        var out = ""
        out.unicodeScalars.reserveCapacity(value.unicodeScalars.count)
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            case "\u{00}"..."\u{1F}", "\u{7F}"..."\u{9F}": out.unicodeScalars.append("\u{FFFD}")
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// HELP text: backslash and line feed escaped; other control characters replaced.
    public static func escapeHelp(_ help: String) -> String {
        var out = ""
        for scalar in help.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\u{00}"..."\u{1F}", "\u{7F}"..."\u{9F}": out.unicodeScalars.append("\u{FFFD}")
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// Integers without a fraction (exact up to 2^53), others in Swift's shortest round-trip
    /// form (which Go's ParseFloat reads), and `+Inf`, `-Inf`, `NaN`.
    public static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 9_007_199_254_740_992 { return String(Int64(value)) }
        return String(value)
    }

    private static func isLetter(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
    }

    private static func isDigit(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }
}
