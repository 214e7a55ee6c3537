import CascadeCLI
import Testing

@Suite("Human formats")
struct FormattingTests {
    @Test("printable turns every control character into a visible escape and leaves the rest alone")
    func printable() {
        #expect(HumanFormat.printable("1.0\u{1b}[31mred\u{1b}[0m") == "1.0\\x1b[31mred\\x1b[0m")
        #expect(HumanFormat.printable("a\nb\rc\u{07}\u{7f}\u{9b}") == "a\\x0ab\\x0dc\\x07\\x7f\\x9b")
        #expect(HumanFormat.printable("tab\tkept, ünïcödé kept, 🚀 kept") == "tab\tkept, ünïcödé kept, 🚀 kept")
        #expect(!HumanFormat.printable("\u{1b}]0;title\u{07}").unicodeScalars.contains { $0.value < 0x20 })
    }

    @Test("Bytes use binary units with one decimal and roll over at 1024", arguments: [
        (Int64(0), "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"), (6_501_171, "6.2 MiB"),
        (1_048_575, "1.0 MiB"), (1_073_741_824, "1.0 GiB"), (5 * 1_099_511_627_776, "5.0 TiB"), (-2048, "-2.0 KiB"),
        (Int64.max, "8.0 EiB"),
    ] as [(Int64, String)])
    func bytes(count: Int64, expected: String) {
        #expect(HumanFormat.bytes(count) == expected)
    }

    @Test("Durations are compact and round to whole seconds from one second up", arguments: [
        (Duration.zero, "0s"), (.milliseconds(250), "250ms"), (.milliseconds(999), "999ms"), (.seconds(4), "4s"),
        (.milliseconds(4_600), "5s"), (.seconds(65), "1m05s"), (.milliseconds(59_600), "1m00s"), (.seconds(3599), "59m59s"),
        (.seconds(7380), "2h03m"), (.seconds(273_600), "3d04h"), (.seconds(-65), "-1m05s"),
    ] as [(Duration, String)])
    func durations(duration: Duration, expected: String) {
        #expect(HumanFormat.duration(duration) == expected)
    }

    @Test("Durations from seconds")
    func durationSeconds() {
        #expect(HumanFormat.duration(seconds: 90.2) == "1m30s")
        #expect(HumanFormat.duration(seconds: .infinity) == "?")
    }

    @Test("Percentages keep at most one decimal")
    func percentages() {
        #expect(HumanFormat.percent(5) == "5%")
        #expect(HumanFormat.percent(12.5) == "12.5%")
        #expect(HumanFormat.percent(100.0 / 3) == "33.3%")
        #expect(HumanFormat.percent(99.96) == "100%")
        #expect(HumanFormat.percent(1, of: 8) == "12.5%")
        #expect(HumanFormat.percent(0, of: 0) == "0%")
    }

    @Test("Timestamps are ISO 8601 UTC, including leap days and before 1970", arguments: [
        (Int64(0), "1970-01-01T00:00:00Z"), (951_782_400, "2000-02-29T00:00:00Z"),
        (1_709_251_199, "2024-02-29T23:59:59Z"), (1_735_689_600, "2025-01-01T00:00:00Z"),
        (-1, "1969-12-31T23:59:59Z"), (253_402_300_799, "9999-12-31T23:59:59Z"),
    ] as [(Int64, String)])
    func timestamps(seconds: Int64, expected: String) {
        #expect(HumanFormat.timestamp(epochSeconds: seconds) == expected)
    }

    @Test("Relative times say ago or in")
    func relative() {
        #expect(HumanFormat.relative(epochSeconds: 100, now: 100) == "just now")
        #expect(HumanFormat.relative(epochSeconds: 95, now: 100) == "5s ago")
        #expect(HumanFormat.relative(epochSeconds: 0, now: 200) == "3m20s ago")
        #expect(HumanFormat.relative(epochSeconds: 7600, now: 100) == "in 2h05m")
    }
}
