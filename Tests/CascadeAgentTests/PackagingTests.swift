import CascadeTestSupport
import Foundation
import Testing

/// `make install`'s script against the built programs, into a scratch tree: what it installs,
/// that every path in the units comes from its variables, and that systemd accepts the units.
@Suite("Packaging: make install and the systemd units")
struct PackagingTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    /// Runs scripts/install.sh with `variables`; returns its exit status and output.
    static func install(_ variables: [String: String]) async throws -> (status: Int32, lines: [String]) {
        let assignments = variables.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        let process = try ChildProcess("/usr/bin/env", assignments + ["\(repository)/scripts/install.sh"], mergeStandardError: true)
        let status = try await process.exitStatus(within: .seconds(60))
        return (status, process.lines)
    }

    @Test("install puts the programs, both units and the example configuration where its variables say, with no placeholder left; systemd-analyze verifies the units")
    func installs() async throws {
        let scratch = try TemporaryDirectory(prefix: "cascade-install")
        let bin = URL(fileURLWithPath: try builtProduct("cascade-agent")).deletingLastPathComponent().path
        let (prefix, etc, state, root, units) = (scratch.file("usr"), scratch.file("etc"), scratch.file("var/cascade"), scratch.file("agent"), scratch.file("units"))
        let result = try await Self.install([
            "BIN": bin, "PREFIX": prefix, "SYSCONFDIR": etc, "STATEDIR": state, "AGENT_ROOT": root, "UNITDIR": units, "USER_NAME": "svc-cascade",
        ])
        #expect(result.status == 0, "\(result.lines)")
        for tool in ["cascade-coordinator", "cascade-agent", "cascade-upgrader", "cascadectl"] {
            #expect(FileManager.default.isExecutableFile(atPath: "\(prefix)/bin/\(tool)"), "\(tool)")
        }
        let coordinator = try String(contentsOfFile: "\(units)/cascade-coordinator.service", encoding: .utf8)
        let agent = try String(contentsOfFile: "\(units)/cascade-agent.service", encoding: .utf8)
        let example = try String(contentsOfFile: "\(etc)/cascade/coordinator.conf.example", encoding: .utf8)
        for text in [coordinator, agent, example] { #expect(!text.contains("@"), "a placeholder is left: \(text)") }
        let lines = { (text: String) in Set(text.split(separator: "\n").map(String.init)) }
        #expect(lines(coordinator).isSuperset(of: [
            "ExecStart=\(prefix)/bin/cascade-coordinator --config \(etc)/cascade/coordinator.conf",
            "ReadWritePaths=\(state)", "User=svc-cascade", "LimitNOFILE=1048576", "ProtectSystem=strict", "NoNewPrivileges=yes",
        ]))
        #expect(lines(agent).isSuperset(of: [
            "ExecStart=\(root)/upgrader/current/bin/cascade-upgrader --root \(root) --standby",
            "ExecStop=\(root)/main/current/bin/cascade-agent stop --root \(root)",
            "ReadWritePaths=\(root)", "KillMode=process", "LimitNOFILE=65536", "ProtectSystem=strict",
        ]))
        #expect(lines(example).contains("data = \(state)"))
        let completion = try String(contentsOfFile: "\(prefix)/share/bash-completion/completions/cascadectl", encoding: .utf8)
        #expect(completion.contains("complete -F _cascadectl cascadectl"))

        // Every key of the example is one the coordinator knows: with the example as it is, the
        // first complaint is the missing key file, not the configuration.
        let check = try ChildProcess("\(prefix)/bin/cascade-coordinator", ["--config", "\(etc)/cascade/coordinator.conf.example"], mergeStandardError: true)
        #expect(try await check.exitStatus(within: .seconds(20)) == 1)
        #expect(check.lines == ["cascade-coordinator: cannot start: cannot read the trusted key file \(etc)/cascade/release.pub.pem"], "\(check.lines)")

        // systemd's own check, once the agent root holds a release (ExecStart must exist).
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze") else {
            print("skipped systemd-analyze verify: /usr/bin/systemd-analyze is not installed (Debian package systemd)")
            return
        }
        let bundle = try await Self.bundle(in: scratch)
        let unpack = try ChildProcess("\(prefix)/bin/cascade-agent", ["install", "--root", root, bundle], mergeStandardError: true)
        #expect(try await unpack.exitStatus(within: .seconds(60)) == 0, "\(unpack.lines)")
        let verify = try ChildProcess("/usr/bin/systemd-analyze", ["verify", "\(units)/cascade-coordinator.service", "\(units)/cascade-agent.service"], mergeStandardError: true)
        #expect(try await verify.exitStatus(within: .seconds(30)) == 0, "\(verify.lines)")
    }

    @Test("install refuses a relative path and a missing build, changing nothing")
    func refuses() async throws {
        let scratch = try TemporaryDirectory(prefix: "cascade-install")
        let bin = URL(fileURLWithPath: try builtProduct("cascade-agent")).deletingLastPathComponent().path
        let relative = try await Self.install(["BIN": bin, "PREFIX": "usr/local", "DESTDIR": scratch.path])
        #expect(relative.status == 2)
        #expect(relative.lines == ["install: usr/local is not an absolute path"])
        let missing = try await Self.install(["BIN": scratch.file("nothing"), "PREFIX": scratch.file("usr")])
        #expect(missing.status == 1)
        #expect(missing.lines.first?.hasPrefix("install: \(scratch.file("nothing"))/cascade-coordinator is missing") == true, "\(missing.lines)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path).isEmpty)
    }

    /// A minimal release bundle of the built programs (VERSION 1.0), made with tar.
    static func bundle(in scratch: TemporaryDirectory) async throws -> String {
        let tree = scratch.file("bundle")
        try FileManager.default.createDirectory(atPath: "\(tree)/bin", withIntermediateDirectories: true)
        for tool in ["cascade-agent", "cascade-upgrader"] {
            try FileManager.default.copyItem(atPath: try builtProduct(tool), toPath: "\(tree)/bin/\(tool)")
        }
        try "1.0\n".write(toFile: "\(tree)/VERSION", atomically: true, encoding: .utf8)
        let tar = try ChildProcess("/bin/tar", ["--format=ustar", "-C", tree, "-cf", scratch.file("cascade-1.0.tar"), "bin", "VERSION"], mergeStandardError: true)
        guard try await tar.exitStatus(within: .seconds(60)) == 0 else { throw TestFailure("tar failed: \(tar.lines)") }
        return scratch.file("cascade-1.0.tar")
    }
}
