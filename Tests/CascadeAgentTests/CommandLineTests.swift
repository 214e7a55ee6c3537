import CascadeAgent
import CascadeInstall
import CascadeUpgrader
import CascadeTestSupport
import Foundation
import Testing

@Suite("cascade-agent and cascade-upgrader command lines")
struct CommandLineTests {
    static let commandLines: [([String], Int32)] = [
        (["--help"], 0), (["frobnicate"], 2), (["status"], 2), (["install", "--root", "/tmp/x"], 2), ([], 2),
        (["upgrade", "--root", "/tmp/x", "--timeout", "soon", "b.tar"], 2),
    ]

    @Test("--help succeeds and a bad command line exits 2 with the usage", arguments: commandLines)
    func usage(arguments: [String], expected: Int32) async throws {
        let process = try ChildProcess(try builtProduct("cascade-agent"), arguments)
        #expect(try await process.exitStatus() == expected)
    }

    @Test("the upgrader without --root exits 2; its --help exits 0")
    func upgraderUsage() async throws {
        #expect(try await ChildProcess(try builtProduct("cascade-upgrader"), []).exitStatus() == 2)
        #expect(try await ChildProcess(try builtProduct("cascade-upgrader"), ["--help"]).exitStatus() == 0)
    }

    @Test("status of a directory with no agent fails with one clear sentence")
    func statusWithoutAgent() async throws {
        let directory = try TemporaryDirectory()
        let process = try ChildProcess(try builtProduct("cascade-agent"), ["status", "--root", directory.path])
        #expect(try await process.exitStatus() == 1)
        _ = try await waitUntil(within: .seconds(5), "the error sentence") {
            process.standardError.contains("has no installed agent") ? true : nil
        }
    }

    @Test("install refuses a root that already has an agent")
    func installTwice() async throws {
        let pair = try AgentPair()
        defer { pair.stop() }
        let bundle = try TestBundles.make("1.0", in: pair.directory)
        let process = try ChildProcess(try builtProduct("cascade-agent"), ["install", "--root", pair.layout.root, bundle])
        #expect(try await process.exitStatus() == 1)
        #expect(pair.status(.main).current == "1.0")
    }

    @Test("a second upgrader for the same root exits 3 and leaves the first alone")
    func singleInstance() async throws {
        let pair = try AgentPair()
        defer { pair.stop() }
        try pair.start()
        let pids = try await pair.waitSettled(main: "1.0", upgrader: "1.0")
        let second = try ChildProcess(pair.layout.currentBinary(.upgrader), ["--root", pair.layout.root])
        #expect(try await second.exitStatus() == 3)
        #expect(pair.settled(main: "1.0", upgrader: "1.0")?.upgrader == pids.upgrader)
    }

    @Test("the control socket answers its owner and is private")
    func controlSocket() async throws {
        let pair = try AgentPair()
        defer { pair.stop() }
        try pair.start()
        let pids = try await pair.waitSettled(main: "1.0", upgrader: "1.0")
        let reply = try ControlSocket.request(pair.layout.socketPath, "PING")
        #expect(reply == "OK \(pids.upgrader) 1.0")
        var info = stat()
        #expect(lstat(pair.layout.socketPath, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o600)
    }
}
