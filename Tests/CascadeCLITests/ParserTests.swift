import CascadeCLI
import Testing

@Suite("Parsing the command line")
struct ParserTests {
    @Test("Usage errors print one line and a hint, and exit 2", arguments: [
        (["rollout", "strat"], "unknown command 'strat'; did you mean 'start'?", "demo rollout"),
        (["rolout"], "unknown command 'rolout'; did you mean 'rollout'?", "demo"),
        (["deploy"], "unknown command 'deploy'", "demo"),
        (["rollout", "start"], "missing required option '--release'", "demo rollout start"),
        (["rollout"], "missing command; choose one of: start, status", "demo rollout"),
        ([], "missing command; choose one of: rollout, release, fail", "demo"),
        (["rollout", "start", "--release"], "option '--release' needs a value (VERSION)", "demo rollout start"),
        (["rollout", "start", "--release", "--json"], "option '--release' needs a value (VERSION)", "demo rollout start"),
        (["rollout", "start", "--relase", "1.1"], "unknown option '--relase'; did you mean '--release'?", "demo rollout start"),
        (["rollout", "start", "--bogus"], "unknown option '--bogus'", "demo rollout start"),
        (["rollout", "start", "-x"], "unknown option '-x'", "demo rollout start"),
        (["rollout", "start", "--release", "1", "--json=yes"], "option '--json' takes no value", "demo rollout start"),
        (["rollout", "start", "--release", "1", "--release", "2"], "option '--release' was given more than once", "demo rollout start"),
        (["release", "push"], "missing argument FILE", "demo release push"),
        (["rollout", "status", "r-1", "r-2"], "unexpected argument 'r-2'", "demo rollout status"),
        (["rollout", "help", "statu"], "unknown command 'statu'; did you mean 'status'?", "demo rollout"),
        // An option of a subcommand is not accepted before the subcommand is named.
        (["rollout", "--release", "1", "start"], "unknown option '--release'", "demo rollout"),
        // After "--", "--help" is an ordinary word.
        (["rollout", "status", "--", "--help", "x"], "unexpected argument 'x'", "demo rollout status"),
    ])
    func usageErrors(words: [String], message: String, hint: String) async {
        let result = await Sample.run(words)
        #expect(result.code == 2)
        #expect(result.out == "")
        #expect(result.err == "demo: \(message)\nTry '\(hint) --help'.\n")
    }

    @Test("A handler's failure prints one line and exits 1")
    func failure() async {
        let result = await Sample.run(["fail"])
        #expect(result.code == 1)
        #expect(result.err == "demo: coordinator unreachable\n")
    }

    @Test("A usage error thrown by a handler points at its command")
    func handlerUsageError() async {
        let program = Program(Command("tool", summary: "A tool.", subcommands: [
            Command("go", summary: "Go.", run: { context in throw context.usageError("--fast and --slow conflict") }),
        ]))
        let captured = CapturedConsole()
        let code = await program.run(["go"], environment: CLIEnvironment(console: captured.console))
        #expect(code == 2)
        #expect(captured.errorOutput == "tool: --fast and --slow conflict\nTry 'tool go --help'.\n")
    }

    @Test("Other errors thrown by a handler are failures described by the error")
    func foreignError() async {
        struct Broken: Error, CustomStringConvertible { var description: String { "disk on fire" } }
        let program = Program(Command("tool", summary: "A tool.", run: { _ in throw Broken() }))
        let captured = CapturedConsole()
        let code = await program.run([], environment: CLIEnvironment(console: captured.console))
        #expect(code == 1)
        #expect(captured.errorOutput == "tool: disk on fire\n")
    }

    @Test("A failure with an empty message prints nothing and keeps its exit code")
    func silentFailure() async {
        let program = Program(Command("tool", summary: "A tool.", run: { _ in throw CLIError.failure("", exitCode: 3) }))
        let captured = CapturedConsole()
        let code = await program.run([], environment: CLIEnvironment(console: captured.console))
        #expect(code == 3)
        #expect(captured.errorOutput == "")
    }

    @Test("Success runs the handler with the command path and exits 0")
    func success() async throws {
        let recorder = Recorder()
        let result = await Sample.run(["rollout", "start", "--release", "1.1"], record: recorder)
        #expect(result.code == 0)
        #expect(result.err == "")
        let context = try #require(recorder.last)
        #expect(context.commandPath == ["rollout", "start"])
        #expect(context.program == "demo")
        #expect(try context.arguments.string("release") == "1.1")
    }

    @Test("Values come as --name VALUE, --name=VALUE and short aliases, before or after the subcommand")
    func valueForms() throws {
        let spaced = try Sample.parse(["rollout", "start", "--release", "1.1", "-c", "10.0.0.1:7443"])
        #expect(try spaced.string("release") == "1.1")
        #expect(try spaced.string("coordinator") == "10.0.0.1:7443")
        let joined = try Sample.parse(["--coordinator=h:1", "rollout", "start", "--release=--odd="])
        #expect(try joined.string("release") == "--odd=")
        #expect(try joined.string("coordinator") == "h:1")
        #expect(try joined.flag("json") == false)
        #expect(try Sample.parse(["rollout", "--json", "start", "--release", "1"]).flag("json"))
    }

    @Test("Repeatable options collect repeated and comma-separated values in order")
    func repeatable() throws {
        let parsed = try Sample.parse(["rollout", "start", "--release", "1", "--clusters", "a,b", "--clusters=c", "--clusters", " d , "])
        #expect(parsed.list("clusters") == ["a", "b", "c", "d"])
        #expect(try Sample.parse(["rollout", "start", "--release", "1"]).list("clusters") == [])
    }

    @Test("Positionals: optional, variadic, after --, and negative numbers are not options")
    func positionals() throws {
        let none = try Sample.parse(["rollout", "status"])
        #expect(none.optionalPositional("ROLLOUT") == nil)
        let one = try Sample.parse(["rollout", "status", "-5"])
        #expect(one.optionalPositional("ROLLOUT") == "-5")
        let files = try Sample.parse(["release", "push", "a.tar", "--json", "b.tar", "--", "--c.tar"])
        #expect(files.positional("FILE") == "a.tar")
        #expect(files.positionals("MORE") == ["b.tar", "--c.tar"])
        #expect(try files.flag("json"))
        #expect(try Sample.parse(["release", "push", "-"]).positional("FILE") == "-")
    }

    @Test("--help, -h and help print the command's help to stdout and exit 0", arguments: [
        ["rollout", "start", "--help"], ["rollout", "start", "-h"], ["help", "rollout", "start"],
        ["rollout", "help", "start"], ["rollout", "start", "--release", "--help"], ["rollout", "start", "--bogus=1", "-h"], ["rollout", "start", "extra", "--help"],
    ])
    func helpForms(words: [String]) async {
        let result = await Sample.run(words)
        #expect(result.code == 0)
        #expect(result.err == "")
        #expect(result.out.hasPrefix("Usage: demo rollout start --release VERSION [options]\n"))
    }

    @Test("Suggestions allow small edits and unique prefixes, not distant words")
    func suggestions() async {
        #expect(await Sample.run(["rollout", "stats"]).err.contains("did you mean 'status'?"))
        #expect(await Sample.run(["rollout", "start", "--max", "2"]).err
            .contains("unknown option '--max'; did you mean '--max-unavailable'?"))
        #expect(await Sample.run(["rollout", "start", "--health-timeuot", "1"]).err
            .contains("did you mean '--health-timeout'?"))
        #expect(!(await Sample.run(["rollout", "zzzzzz"]).err.contains("did you mean")))
    }
}
