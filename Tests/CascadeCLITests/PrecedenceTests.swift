import CascadeCLI
import Testing

@Suite("Where values come from")
struct PrecedenceTests {
    let start = ["rollout", "start", "--release", "1.1"]

    @Test("A flag beats the environment, which beats the config file, which beats the default")
    func precedence() throws {
        let config = ["/etc/demo.conf": "coordinator = from-config:1\n"]
        let variables = ["DEMO_COORDINATOR": "from-env:1", "DEMO_CONFIG": "/etc/demo.conf"]
        let flag = try Sample.parse(start + ["-c", "from-flag:1"], variables: variables, files: config)
        #expect(try flag.string("coordinator") == "from-flag:1")
        #expect(flag.source(of: "coordinator") == .commandLine)

        let environment = try Sample.parse(start, variables: variables, files: config)
        #expect(try environment.string("coordinator") == "from-env:1")
        #expect(environment.source(of: "coordinator") == .environment("DEMO_COORDINATOR"))

        let file = try Sample.parse(start, variables: ["DEMO_CONFIG": "/etc/demo.conf"], files: config)
        #expect(try file.string("coordinator") == "from-config:1")
        #expect(file.source(of: "coordinator") == .config(path: "/etc/demo.conf", line: 1))

        let fallback = try Sample.parse(start)
        #expect(try fallback.string("coordinator") == "127.0.0.1:7443")
        #expect(fallback.source(of: "coordinator") == .defaultValue)
    }

    @Test("The config path comes from --config, then its variable, then the default under HOME")
    func configPath() throws {
        let files = ["/a.conf": "max-unavailable = 2", "/b.conf": "max-unavailable = 3", "/home/op/.demo.conf": "max-unavailable = 4"]
        let variables = ["DEMO_CONFIG": "/b.conf", "HOME": "/home/op"]
        #expect(try Sample.parse(start + ["--config", "/a.conf"], variables: variables, files: files).int("max-unavailable") == 2)
        #expect(try Sample.parse(start, variables: variables, files: files).int("max-unavailable") == 3)
        #expect(try Sample.parse(start, variables: ["HOME": "/home/op"], files: files).int("max-unavailable") == 4)
        // A missing default file is fine.
        #expect(try Sample.parse(start, variables: ["HOME": "/nowhere"], files: files).int("max-unavailable") == 1)
    }

    @Test("Config files take comments, blank lines, quotes, repeated list keys and flags")
    func configSyntax() throws {
        let text = """
        # demo settings
        coordinator = "h:1 # not a comment"

        clusters = a, b   # trailing comment
        clusters = c
        json = yes
        release = 2.0
        """
        let parsed = try Sample.parse(["rollout", "start"], variables: ["DEMO_CONFIG": "/c"], files: ["/c": text])
        #expect(try parsed.string("coordinator") == "h:1 # not a comment")
        #expect(parsed.list("clusters") == ["a", "b", "c"])
        #expect(try parsed.flag("json"))
        #expect(try parsed.string("release") == "2.0")
    }

    @Test("Config and environment problems are reported with the file, line or variable", arguments: [
        (["--config", "/missing"], [:], [:], "config file '/missing' does not exist", Int32(1)),
        ([], ["DEMO_CONFIG": "/c"], ["/c": "coordinater = x"], "/c line 1: unknown key 'coordinater'; did you mean 'coordinator'?", 1),
        ([], ["DEMO_CONFIG": "/c"], ["/c": "\n\njust words"], "/c line 3: expected 'key = value', got 'just words'", 1),
        ([], ["DEMO_CONFIG": "/c"], ["/c": "bad key = 1"], "/c line 1: 'bad key' is not a valid key", 1),
        ([], ["DEMO_CONFIG": "/c"], ["/c": "config = /other"], "/c line 1: unknown key 'config'", 1),
        ([], ["DEMO_CONFIG": "/c"], ["/c": "json = maybe"],
         "invalid value 'maybe' for '--json' (from /c line 1): expected true or false", 2),
        ([], ["DEMO_HEALTH_TIMEOUT": "soon"], [:],
         "invalid value 'soon' for '--health-timeout' (from DEMO_HEALTH_TIMEOUT): expected a duration such as 30s, 5m, 1h or 500ms", 2),
    ] as [([String], [String: String], [String: String], String, Int32)])
    func sourceErrors(extra: [String], variables: [String: String], files: [String: String], message: String, code: Int32) async {
        // A command that reads its typed values, so bad ones surface as the handler runs.
        let check = Command("check", summary: "Reads values.", options: [
            .value("health-timeout", help: "Timeout.", environment: "DEMO_HEALTH_TIMEOUT"),
        ], run: { context in
            _ = try context.arguments.flag("json")
            _ = try context.arguments.optionalDuration("health-timeout")
        })
        let program = Program(Command("demo", summary: "Demo.", options: Sample.program().root.options,
                                      subcommands: [check] + Sample.program().root.subcommands), configOption: "config")
        let captured = CapturedConsole()
        let exit = await program.run(["check"] + extra, environment: CLIEnvironment(
            variables: variables, console: captured.console, readFile: { files[$0] }))
        #expect(exit == code)
        let hint = code == 2 ? "Try 'demo check --help'.\n" : ""
        #expect(captured.errorOutput == "demo: \(message)\n\(hint)")
    }

    @Test("Reading the config file can fail with the reader's error")
    func unreadable() async {
        struct Denied: Error, CustomStringConvertible { var description: String { "permission denied" } }
        let captured = CapturedConsole()
        let environment = CLIEnvironment(variables: ["DEMO_CONFIG": "/c"], console: captured.console,
                                         readFile: { _ in throw Denied() })
        let code = await Sample.program().run(start, environment: environment)
        #expect(code == 1)
        #expect(captured.errorOutput == "demo: cannot read config file '/c': permission denied\n")
    }

    @Test("A required option is satisfied by the environment or config too")
    func requiredFromConfig() throws {
        let parsed = try Sample.parse(["rollout", "start"], variables: ["DEMO_CONFIG": "/c"], files: ["/c": "release = 3.0"])
        #expect(try parsed.string("release") == "3.0")
    }
}
