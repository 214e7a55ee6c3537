/// A release version: dot-separated decimal numbers with an optional pre-release suffix,
/// `1.10.2`, `2.0-rc1` (services.md §4.4).
///
/// Numbers compare numerically (`1.10` > `1.9`); missing trailing numbers count as 0, so
/// `1.2` == `1.2.0`. A pre-release orders before its release (`2.0-rc1` < `2.0`), and suffixes
/// compare "naturally": digit runs as numbers, other runs byte-wise, digits before letters
/// (`rc2` < `rc10`, `alpha` < `beta` < `rc1`).
public struct ReleaseVersion: Comparable, Hashable, Sendable, CustomStringConvertible {
    /// The text as given (canonical: it is only accepted in canonical form).
    public let text: String
    public let numbers: [UInt64]
    /// The part after `-`, or nil for a release.
    public let prerelease: String?

    public static let maxLength = 64
    public static let maxNumbers = 8

    public init(_ text: String) throws(ReleaseError) {
        func fail(_ why: String) -> ReleaseError {
            ReleaseError(.badVersion, "\"\(text.prefix(80))\" is not a release version: \(why)")
        }
        guard !text.isEmpty else { throw fail("it is empty") }
        guard text.utf8.count <= Self.maxLength else { throw fail("it is longer than \(Self.maxLength) bytes") }
        let bytes = Array(text.utf8)
        if bytes[0] == UInt8(ascii: "v") || bytes[0] == UInt8(ascii: "V") {
            throw fail("write \(text.dropFirst()) without the leading \"\(text.prefix(1))\"")
        }
        let dash = bytes.firstIndex(of: UInt8(ascii: "-"))
        let core = bytes[..<(dash ?? bytes.endIndex)]
        var numbers: [UInt64] = []
        for part in core.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false) {
            guard !part.isEmpty else { throw fail("it has an empty number (\"..\", or a dot at an end)") }
            guard part.allSatisfy(Self.isDigit) else {
                throw fail("\"\(String(decoding: part, as: UTF8.self))\" is not a decimal number")
            }
            guard part.count == 1 || part.first != UInt8(ascii: "0") else {
                throw fail("\"\(String(decoding: part, as: UTF8.self))\" has a leading zero")
            }
            guard let value = UInt64(String(decoding: part, as: UTF8.self)) else {
                throw fail("\"\(String(decoding: part, as: UTF8.self))\" is too large")
            }
            numbers.append(value)
        }
        guard numbers.count <= Self.maxNumbers else { throw fail("it has more than \(Self.maxNumbers) numbers") }
        var prerelease: String?
        if let dash {
            let suffix = bytes[(dash + 1)...]
            guard !suffix.isEmpty else { throw fail("the suffix after \"-\" is empty") }
            guard suffix.allSatisfy({ Self.isDigit($0) || Self.isLetter($0) || $0 == UInt8(ascii: ".") }) else {
                throw fail("the suffix may hold only letters, digits and dots")
            }
            prerelease = String(decoding: suffix, as: UTF8.self)
        }
        self.text = text
        self.numbers = numbers
        self.prerelease = prerelease
    }

    public var description: String { text }

    /// The numbers without trailing zeros, so equal versions hash alike.
    private var significantNumbers: ArraySlice<UInt64> {
        var end = numbers.endIndex
        while end > numbers.startIndex && numbers[end - 1] == 0 { end -= 1 }
        return numbers[..<end]
    }

    public static func == (a: ReleaseVersion, b: ReleaseVersion) -> Bool {
        a.significantNumbers == b.significantNumbers && a.prerelease == b.prerelease
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(Array(significantNumbers))
        hasher.combine(prerelease)
    }

    public static func < (a: ReleaseVersion, b: ReleaseVersion) -> Bool {
        for i in 0..<max(a.numbers.count, b.numbers.count) {
            let x = i < a.numbers.count ? a.numbers[i] : 0
            let y = i < b.numbers.count ? b.numbers[i] : 0
            if x != y { return x < y }
        }
        switch (a.prerelease, b.prerelease) {
        case (nil, nil), (nil, _?): return false
        case (_?, nil): return true
        case let (x?, y?): return naturalOrder(Array(x.utf8), Array(y.utf8))
        }
    }

    /// Compares suffixes run by run: digit runs numerically, other runs byte-wise, and a digit
    /// run before any other run; a suffix that is a prefix of another comes first.
    private static func naturalOrder(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var i = 0, j = 0
        while i < a.count && j < b.count {
            let runA = run(a, from: i), runB = run(b, from: j)
            let digitsA = isDigit(a[i]), digitsB = isDigit(b[j])
            if digitsA != digitsB { return digitsA }
            if digitsA {
                let x = a[runA].drop { $0 == UInt8(ascii: "0") }, y = b[runB].drop { $0 == UInt8(ascii: "0") }
                if x.count != y.count { return x.count < y.count }
                if x != y { return x.lexicographicallyPrecedes(y) }
                // Equal numbers: fewer leading zeros first, so the order separates distinct texts.
                if runA.count != runB.count { return runA.count < runB.count }
            } else if a[runA] != b[runB] {
                return a[runA].lexicographicallyPrecedes(b[runB])
            }
            i = runA.upperBound
            j = runB.upperBound
        }
        return i == a.count && j < b.count
    }

    private static func run(_ bytes: [UInt8], from start: Int) -> Range<Int> {
        let digits = isDigit(bytes[start])
        var end = start + 1
        while end < bytes.count && isDigit(bytes[end]) == digits { end += 1 }
        return start..<end
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    private static func isLetter(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
    }
}
