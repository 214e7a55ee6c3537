/// A strict reader of the Prometheus text exposition format 0.0.4, our own (make test must
/// not need promtool): comments `# HELP` / `# TYPE`, samples `name{label="value",...} value
/// [timestamp]`. It throws on anything the format does not allow — a bad name, an unknown
/// escape, an unterminated label value, a family split in two, a TYPE after its samples, a
/// histogram whose buckets are not cumulative or whose `+Inf` bucket is not its count — so a
/// test that parses a scrape also checks it.
public struct PrometheusScrape: Sendable {
    public struct Sample: Sendable, Equatable {
        public var name: String
        public var labels: [String: String]
        public var value: Double
    }

    public struct Family: Sendable {
        public var name: String
        public var type: String
        public var help: String?
        public var samples: [Sample]
    }

    /// Families by name, and in the order they came.
    public private(set) var families: [String: Family] = [:]
    public private(set) var order: [String] = []

    public struct ParseError: Error, CustomStringConvertible {
        public let line: Int
        public let reason: String
        public var description: String { "line \(line): \(reason)" }
    }

    public init(parsing text: String) throws {
        var current: String?
        var closed: Set<String> = []
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard text.isEmpty || text.hasSuffix("\n") else { throw ParseError(line: lines.count, reason: "the exposition does not end with a line feed") }
        for (index, raw) in lines.enumerated() {
            let number = index + 1
            let line = String(raw)
            if line.isEmpty { continue }
            func fail(_ reason: String) -> ParseError { ParseError(line: number, reason: reason) }
            if line.hasPrefix("#") {
                let parts = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false).map(String.init)
                guard parts.count >= 3, parts[0] == "#", parts[1] == "HELP" || parts[1] == "TYPE" else { continue }  // a plain comment
                let name = parts[2]
                guard Self.isMetricName(name) else { throw fail("\"\(name)\" is not a metric name") }
                if current != name {
                    if let current { closed.insert(current) }
                    guard !closed.contains(name) else { throw fail("the family \(name) appears twice") }
                    current = name
                }
                var family = families[name] ?? Family(name: name, type: "untyped", help: nil, samples: [])
                if families[name] == nil { order.append(name) }
                if parts[1] == "HELP" {
                    guard family.help == nil else { throw fail("a second HELP for \(name)") }
                    family.help = try Self.unescapeHelp(parts.count > 3 ? parts[3] : "", line: number)
                } else {
                    let type = parts.count > 3 ? parts[3] : ""
                    guard ["counter", "gauge", "histogram", "summary", "untyped"].contains(type) else { throw fail("unknown type \"\(type)\"") }
                    guard family.samples.isEmpty else { throw fail("the TYPE of \(name) comes after its samples") }
                    family.type = type
                }
                families[name] = family
                continue
            }
            let sample = try Self.sample(line, line: number)
            let family = Self.familyName(of: sample.name, among: families)
            if current != family {
                if let current { closed.insert(current) }
                guard !closed.contains(family) else { throw fail("the family \(family) appears twice") }
                current = family
            }
            if families[family] == nil {
                families[family] = Family(name: family, type: "untyped", help: nil, samples: [])
                order.append(family)
            }
            families[family]?.samples.append(sample)
        }
        for family in families.values where family.type == "histogram" {
            try Self.checkHistogram(family)
        }
    }

    // MARK: - Reading values

    public func family(_ name: String) -> Family? { families[name] }

    /// The samples of `name` (a sample name: `x_bucket`, `x_sum` for histograms).
    public func samples(_ name: String) -> [Sample] {
        families.values.flatMap { $0.samples }.filter { $0.name == name }
    }

    /// The value of the one sample of `name` with exactly these labels.
    public func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        samples(name).first { $0.labels == labels }?.value
    }

    /// The sum over the samples of `name` whose labels include `matching`.
    public func sum(_ name: String, matching: [String: String] = [:]) -> Double {
        samples(name).filter { sample in matching.allSatisfy { sample.labels[$0.key] == $0.value } }.reduce(0) { $0 + $1.value }
    }

    // MARK: - The grammar

    static func familyName(of sample: String, among families: [String: Family]) -> String {
        for suffix in ["_bucket", "_sum", "_count"] where sample.hasSuffix(suffix) {
            let base = String(sample.dropLast(suffix.count))
            if let family = families[base], family.type == "histogram" || family.type == "summary" { return base }
        }
        return sample
    }

    static func isMetricName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first.isASCIILetter || first == "_" || first == ":" else { return false }
        return name.unicodeScalars.allSatisfy { $0.isASCIILetter || ("0"..."9").contains($0) || $0 == "_" || $0 == ":" }
    }

    static func isLabelName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first.isASCIILetter || first == "_" else { return false }
        return name.unicodeScalars.allSatisfy { $0.isASCIILetter || ("0"..."9").contains($0) || $0 == "_" }
    }

    static func sample(_ line: String, line number: Int) throws -> Sample {
        func fail(_ reason: String) -> ParseError { ParseError(line: number, reason: reason) }
        let scalars = Array(line.unicodeScalars)
        var index = 0
        var name = ""
        while index < scalars.count, scalars[index] != "{", scalars[index] != " " {
            name.unicodeScalars.append(scalars[index])
            index += 1
        }
        guard isMetricName(name) else { throw fail("\"\(name)\" is not a metric name") }
        var labels: [String: String] = [:]
        if index < scalars.count, scalars[index] == "{" {
            index += 1
            while true {
                guard index < scalars.count else { throw fail("the labels of \(name) are not closed") }
                if scalars[index] == "}" {
                    index += 1
                    break
                }
                var label = ""
                while index < scalars.count, scalars[index] != "=" {
                    label.unicodeScalars.append(scalars[index])
                    index += 1
                }
                guard isLabelName(label) else { throw fail("\"\(label)\" is not a label name") }
                guard index + 1 < scalars.count, scalars[index + 1] == "\"" else { throw fail("the value of \(label) is not quoted") }
                index += 2
                var value = ""
                var terminated = false
                while index < scalars.count {
                    let scalar = scalars[index]
                    index += 1
                    if scalar == "\"" {
                        terminated = true
                        break
                    }
                    if scalar == "\\" {
                        guard index < scalars.count else { break }
                        switch scalars[index] {
                        case "\\": value += "\\"
                        case "\"": value += "\""
                        case "n": value += "\n"
                        default: throw fail("\"\\\(scalars[index])\" is not an escape the format allows")
                        }
                        index += 1
                        continue
                    }
                    guard scalar != "\n" else { throw fail("a raw line feed in a label value") }
                    value.unicodeScalars.append(scalar)
                }
                guard terminated else { throw fail("the value of \(label) is not terminated") }
                guard labels[label] == nil else { throw fail("the label \(label) appears twice") }
                labels[label] = value
                if index < scalars.count, scalars[index] == "," { index += 1 }
            }
        }
        let rest = String(String.UnicodeScalarView(scalars[index...])).split(separator: " ", omittingEmptySubsequences: true)
        guard rest.count == 1 || rest.count == 2 else { throw fail("expected a value (and an optional timestamp) after \(name)") }
        guard let value = parseValue(String(rest[0])) else { throw fail("\"\(rest[0])\" is not a sample value") }
        if rest.count == 2, Int64(rest[1]) == nil { throw fail("\"\(rest[1])\" is not a timestamp in milliseconds") }
        return Sample(name: name, labels: labels, value: value)
    }

    /// Go's ParseFloat as the format uses it: decimals, exponents, `+Inf`, `-Inf`, `NaN`.
    static func parseValue(_ text: String) -> Double? {
        switch text {
        case "+Inf", "Inf": return .infinity
        case "-Inf": return -.infinity
        case "NaN": return .nan
        default:
            guard text.unicodeScalars.allSatisfy({ ("0"..."9").contains($0) || "+-.eE".unicodeScalars.contains($0) }) else { return nil }
            return Double(text)
        }
    }

    static func unescapeHelp(_ text: String, line: Int) throws -> String {
        var out = ""
        var escaped = false
        for scalar in text.unicodeScalars {
            if escaped {
                switch scalar {
                case "\\": out += "\\"
                case "n": out += "\n"
                default: throw ParseError(line: line, reason: "\"\\\(scalar)\" is not an escape HELP allows")
                }
                escaped = false
            } else if scalar == "\\" {
                escaped = true
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// Per series: buckets ascending and cumulative, a `+Inf` bucket equal to `_count`, a `_sum`.
    static func checkHistogram(_ family: Family) throws {
        let name = family.name
        var series: [[String: String]: [(bound: Double, count: Double)]] = [:]
        for sample in family.samples where sample.name == name + "_bucket" {
            guard let le = sample.labels["le"], let bound = parseValue(le) else {
                throw ParseError(line: 0, reason: "a bucket of \(name) has no le label")
            }
            var key = sample.labels
            key["le"] = nil
            series[key, default: []].append((bound, sample.value))
        }
        for (labels, buckets) in series {
            for (previous, next) in zip(buckets, buckets.dropFirst()) where !(previous.bound < next.bound && previous.count <= next.count) {
                throw ParseError(line: 0, reason: "the buckets of \(name)\(labels) are not ascending and cumulative")
            }
            guard let last = buckets.last, last.bound == .infinity else {
                throw ParseError(line: 0, reason: "\(name)\(labels) has no +Inf bucket")
            }
            let count = family.samples.first { $0.name == name + "_count" && $0.labels == labels }?.value
            guard count == last.count else { throw ParseError(line: 0, reason: "\(name)\(labels): the +Inf bucket is not the count") }
            guard family.samples.contains(where: { $0.name == name + "_sum" && $0.labels == labels }) else {
                throw ParseError(line: 0, reason: "\(name)\(labels) has no _sum")
            }
        }
    }
}

extension Unicode.Scalar {
    fileprivate var isASCIILetter: Bool { ("a"..."z").contains(self) || ("A"..."Z").contains(self) }
}
