import CascadeCLI
import Testing

@Suite("Typed option values")
struct TypedValueTests {
    func parse(_ words: [String], variables: [String: String] = [:]) throws -> ParsedArguments {
        try Sample.parse(["rollout", "start", "--release", "1"] + words, variables: variables)
    }

    @Test("Integers, with and without a range")
    func integers() throws {
        #expect(try parse([]).int("max-unavailable", in: 1...100) == 1)
        #expect(try parse(["--max-unavailable", "7"]).int("max-unavailable") == 7)
        #expect(try parse(["--max-unavailable=-3"]).int("max-unavailable") == -3)
        #expect(throws: CLIError.usage("invalid value 'many' for '--max-unavailable': expected an integer")) {
            try parse(["--max-unavailable", "many"]).int("max-unavailable")
        }
        #expect(throws: CLIError.usage("invalid value '0' for '--max-unavailable': expected an integer from 1 to 100")) {
            try parse(["--max-unavailable", "0"]).int("max-unavailable", in: 1...100)
        }
    }

    @Test("Durations accept units, combinations, decimals and plain seconds", arguments: [
        ("30s", Duration.seconds(30)), ("5m", .seconds(300)), ("1h", .seconds(3600)), ("500ms", .milliseconds(500)),
        ("45", .seconds(45)), ("1.5s", .milliseconds(1500)), ("1m30s", .seconds(90)), ("2d", .seconds(172_800)),
        ("0", .zero), (" 10s ", .seconds(10)),
    ])
    func durations(text: String, expected: Duration) {
        #expect(ValueParsing.duration(text) == expected)
    }

    @Test("Durations reject junk", arguments: ["", "s", "-5s", "5x", "5 s", "1m-2s", "+3", "abc", "1e3s"])
    func badDurations(text: String) {
        #expect(ValueParsing.duration(text) == nil)
    }

    @Test("Duration options report the bad value and the option")
    func durationOption() throws {
        #expect(try parse([]).duration("health-timeout") == .seconds(120))
        #expect(try parse([], variables: ["DEMO_HEALTH_TIMEOUT": "90s"]).duration("health-timeout") == .seconds(90))
        #expect(throws: CLIError.usage(
            "invalid value '10 minutes' for '--health-timeout': expected a duration such as 30s, 5m, 1h or 500ms")) {
            try parse(["--health-timeout", "10 minutes"]).duration("health-timeout")
        }
    }

    @Test("Percentages take 5% or 5 within 0–100")
    func percentages() throws {
        #expect(try parse([]).percentage("failure-budget") == 5)
        #expect(try parse(["--failure-budget", "12.5"]).percentage("failure-budget") == 12.5)
        #expect(try parse(["--failure-budget=0%"]).percentage("failure-budget") == 0)
        for bad in ["101%", "-1", "five", "%", "5%%"] {
            #expect(throws: CLIError.usage(
                "invalid value '\(bad)' for '--failure-budget': expected a percentage from 0 to 100 such as 5%")) {
                try parse(["--failure-budget=\(bad)"]).percentage("failure-budget")
            }
        }
    }

    @Test("Booleans from the environment or config accept the usual spellings")
    func booleans() {
        for text in ["true", "YES", "on", "1"] { #expect(ValueParsing.boolean(text) == true) }
        for text in ["false", "No", "off", "0"] { #expect(ValueParsing.boolean(text) == false) }
        #expect(ValueParsing.boolean("2") == nil)
    }

    @Test("Custom typed values use the same message shape")
    func custom() throws {
        let parsed = try parse(["--max-unavailable", "odd"])
        #expect(throws: CLIError.usage("invalid value 'odd' for '--max-unavailable': expected an even number")) {
            try parsed.typed("max-unavailable", expected: "an even number") { Int($0).flatMap { $0 % 2 == 0 ? $0 : nil } }
        }
    }

    @Test("Absent optional values are nil; required ones name the option and its variable")
    func absent() throws {
        let program = Program(Command("t", summary: "T.", options: [
            .value("token", help: "Token.", environment: "T_TOKEN"), .value("limit", help: "Limit."),
        ], run: { _ in }))
        guard case .invocation(let invocation) = try program.parse([], environment: CLIEnvironment(console: CapturedConsole().console))
        else { Issue.record("expected an invocation"); return }
        let arguments = invocation.arguments
        #expect(arguments.optionalString("token") == nil)
        #expect(try arguments.optionalInt("limit") == nil)
        #expect(try arguments.optionalDuration("limit") == nil)
        #expect(try arguments.optionalPercentage("limit") == nil)
        #expect(throws: CLIError.usage("missing required option '--token' (or set T_TOKEN)")) { try arguments.string("token") }
        #expect(throws: CLIError.usage("missing required option '--limit'")) { try arguments.int("limit") }
    }
}
