import CascadeAPI
import CascadeCLI
import CascadeRPC
import CascadeCrypto
import CascadeTestSupport
import Foundation
import Testing

/// What one finished `cascadectl` run printed.
struct CtlResult: CustomStringConvertible {
    let status: Int32
    let output: String
    let errorOutput: String

    var lines: [String] { output.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init) }
    var description: String { "exit \(status)\nstdout:\n\(output)stderr:\n\(errorOutput)" }

    func json() throws -> Any {
        try JSONSerialization.jsonObject(with: Data(output.utf8))
    }
}

/// Runs the real `cascadectl` binary with a clean environment (HOME in a temporary directory,
/// so no user config file is read) plus `environment`.
struct Ctl {
    let home: TemporaryDirectory
    /// Flags every call gets (connection settings), before the command's own words.
    var common: [String] = []

    init(fixture: CoordinatorFixture? = nil, uri: String = "cascade://operator/bob") throws {
        home = try TemporaryDirectory(prefix: "cascadectl-home")
        if let fixture {
            let tls = try fixture.pki.configuration(uri: uri)
            common = ["--coordinator", "\(fixture.address)", "--ca", tls.trustRootsFile,
                      "--cert", tls.certificateChainFile, "--key", tls.privateKeyFile]
        }
    }

    var environment: [String: String] { ["HOME": home.path, "PATH": "/usr/bin:/bin"] }

    /// Runs to completion (killed after `limit`) and returns everything it printed.
    func run(_ words: [String], environment extra: [String: String] = [:], common useCommon: Bool = true,
             within limit: Duration = .seconds(20)) async throws -> CtlResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try builtProduct("cascadectl"))
        process.arguments = (useCommon ? common : []) + words
        process.environment = environment.merging(extra) { $1 }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let running = RunningCtl(process: process, out: out, err: err)
        let seconds = Int(limit.components.seconds)
        return await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: running.collect(killAfter: seconds)) }
        }
    }

    /// Starts a long-running command (`rollout watch`) whose lines the test awaits.
    func start(_ words: [String]) throws -> ChildProcess {
        let pairs = environment.map { "\($0.key)=\($0.value)" }
        return try ChildProcess("/usr/bin/env", ["-i"] + pairs + [try builtProduct("cascadectl")] + common + words)
    }
}

/// A started process and its pipes, read to the end on a background thread.
final class RunningCtl: @unchecked Sendable {
    let process: Process
    let out: Pipe
    let err: Pipe

    init(process: Process, out: Pipe, err: Pipe) {
        self.process = process
        self.out = out
        self.err = err
    }

    /// Blocks until the process exits (SIGKILL after `killAfter` seconds) and its pipes close.
    func collect(killAfter seconds: Int) -> CtlResult {
        let pid = process.processIdentifier
        let killer = DispatchWorkItem { kill(pid, SIGKILL) }
        DispatchQueue.global().asyncAfter(deadline: .now() + .seconds(seconds), execute: killer)
        let errorData = CtlBox(Data())
        let group = DispatchGroup()
        group.enter()
        let err = self.err
        DispatchQueue.global().async {
            let data = err.fileHandleForReading.readDataToEndOfFile()
            errorData.withLock { $0 = data }
            group.leave()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        killer.cancel()
        return CtlResult(status: process.terminationStatus, output: String(decoding: outData, as: UTF8.self),
                         errorOutput: String(decoding: errorData.withLock { $0 }, as: UTF8.self))
    }
}

/// A small locked box for test helpers.
final class CtlBox<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLock<T>(_ body: (inout Value) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}

/// "293.0 KiB", as cascadectl prints sizes under a MiB.
func kib(_ bytes: Int) -> String { String(format: "%.1f KiB", Double(bytes) / 1024) }

/// A release bundle an agent would install (two executables and VERSION) padded with `size`
/// pseudo-random bytes, in a file; returns the file's bytes.
func writeArtifact(_ path: String, size: Int, seed: UInt64, version: String) throws -> [UInt8] {
    var state = seed
    let padding = (0..<size).map { _ -> UInt8 in
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return UInt8(truncatingIfNeeded: state >> 33)
    }
    var tar = UstarWriter()
    tar.directory("bin")
    tar.file("bin/cascade-agent", Array("#!/bin/sh\n".utf8), mode: 0o755)
    tar.file("bin/cascade-upgrader", Array("#!/bin/sh\n".utf8), mode: 0o755)
    tar.file("VERSION", "\(version)\n")
    tar.file("share/padding", padding)
    let bytes = tar.finished()
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    return bytes
}

@Suite("cascadectl as a subprocess")
struct CtlTests {
    @Test("key generate writes a 0600 private key and its public key, and never overwrites")
    func keyGenerate() async throws {
        let ctl = try Ctl()
        let path = ctl.home.file("release.key")
        let first = try await ctl.run(["key", "generate", "--out", path])
        #expect(first.status == 0, "\(first)")
        let publicKey = try Ed25519PublicKey(pemRepresentation: String(contentsOfFile: path + ".pub", encoding: .utf8))
        let privateKey = try Ed25519PrivateKey(pemRepresentation: String(contentsOfFile: path, encoding: .utf8))
        #expect(privateKey.publicKey == publicKey)
        #expect(first.lines == [
            "private key  \(path) (mode 0600; keep it offline)",
            "public key   \(path).pub (trust it on the coordinator)",
            "key id       \(publicKey.keyID)",
        ])
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)

        let again = try await ctl.run(["key", "generate", "--out", path])
        #expect(again.status == 1)
        #expect(again.output.isEmpty)
        #expect(again.errorOutput == "cascadectl: refusing to overwrite \(path): the file already exists\n")
        #expect(try String(contentsOfFile: path, encoding: .utf8) == privateKey.pemRepresentation)

        let json = try await ctl.run(["key", "generate", "--out", ctl.home.file("second.key"), "--json"])
        let object = try #require(try json.json() as? [String: Any])
        #expect(object["keyId"] as? String == (try Ed25519PublicKey(
            pemRepresentation: String(contentsOfFile: ctl.home.file("second.key.pub"), encoding: .utf8)).keyID))
    }

    @Test("usage errors exit 2 with a hint; typos get a suggestion; --help exits 0")
    func usage() async throws {
        let ctl = try Ctl()
        let typo = try await ctl.run(["rollout", "strat"])
        #expect(typo.status == 2)
        #expect(typo.errorOutput == "cascadectl: unknown command 'strat'; did you mean 'start'?\nTry 'cascadectl rollout --help'.\n")

        let missing = try await ctl.run(["rollout", "start"])
        #expect(missing.status == 2)
        #expect(missing.errorOutput == "cascadectl: missing required option '--release'\nTry 'cascadectl rollout start --help'.\n")

        let badVersion = try await ctl.run(["release", "create", "--signing-key", "k", "--name", "a", "--version", "v1.2", "file"])
        #expect(badVersion.status == 2)
        #expect(badVersion.errorOutput.hasPrefix("cascadectl: invalid value 'v1.2' for '--version': \"v1.2\" is not a release version"))

        let badBudget = try await ctl.run(["rollout", "start", "--release", "1.1", "--failure-budget", "150%"])
        #expect(badBudget.status == 2)
        #expect(badBudget.errorOutput.hasPrefix("cascadectl: invalid value '150%' for '--failure-budget'"))

        let help = try await ctl.run(["rollout", "watch", "--help"])
        #expect(help.status == 0)
        #expect(help.lines.first == "Usage: cascadectl rollout watch [options] [ID]")
        #expect(help.lines.contains { $0.contains("--coordinator HOST:PORT") && $0.contains("env: CASCADE_COORDINATOR") })
    }

    @Test("release create, an interrupted push resumed by release push, list and show")
    func releases() async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        let ctl = try Ctl(fixture: fixture)
        let keyFile = ctl.home.file("trusted.key")
        try SecretFile.create(at: keyFile, contents: fixture.signingKey.pemRepresentation)
        let artifact = ctl.home.file("agent-1.1.tar")
        let artifactBytes = try writeArtifact(artifact, size: 300_000, seed: 11, version: "1.1")

        let created = try await ctl.run(["release", "create", "--signing-key", keyFile, "--name", "cascade-agent", "--version", "1.1",
                                         "--chunk-size", "64KiB", artifact], common: false)
        #expect(created.status == 0, "\(created)")
        let signed = try SignedManifest(serializedBytes: Array(Data(contentsOf: URL(fileURLWithPath: artifact + ".manifest"))))
        let manifest = try Manifest(serializedBytes: signed.manifestBytes)
        #expect(created.lines == [
            "release   1.1 (cascade-agent)",
            "size      \(artifactBytes.count) bytes (\(kib(artifactBytes.count)))",
            "chunks    5 × 64.0 KiB",
            "sha256    \(manifest.sha256.hex)",
            "key id    \(fixture.signingKey.publicKey.keyID)",
            "manifest  \(artifact).manifest",
        ])

        // An interrupted push: the coordinator holds chunks 0 and 3 only.
        let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: artifact)))
        let partial = try await fixture.push((signed, manifest, bytes), indices: [0, 3])
        #expect(partial?.complete == false)

        let pushed = try await ctl.run(["release", "push", "--manifest", artifact + ".manifest", artifact])
        #expect(pushed.status == 0, "\(pushed)")
        #expect(pushed.lines.prefix(3) == [
            "release 1.1: sending 3 of 5 chunks (\(kib(2 * 65_536 + artifactBytes.count - 4 * 65_536))); the coordinator already holds 2",
            "pushed release 1.1: complete",
            "release   1.1 (cascade-agent)",
        ])
        #expect(pushed.lines.contains("chunks    5 of 5 held, 64.0 KiB each"))

        let again = try await ctl.run(["release", "push", artifact])
        #expect(again.status == 0, "\(again)")
        #expect(again.lines.first == "release 1.1 is already complete on the coordinator; nothing to send")

        let list = try await ctl.run(["release", "list", "--json"])
        #expect(list.status == 0, "\(list)")
        let releases = try #require(try list.json() as? [[String: Any]])
        #expect(releases.count == 1)
        #expect(releases.first?["version"] as? String == "1.1")
        #expect(releases.first?["complete"] as? Bool == true)
        #expect(releases.first?["size"] as? Int == artifactBytes.count)

        let table = try await ctl.run(["release", "list"])
        #expect(table.lines.first?.hasPrefix("VERSION  NAME ") == true, "\(table)")
        #expect(table.lines.last?.hasPrefix("1.1      cascade-agent  \(kib(artifactBytes.count))     5/5  yes ") == true, "\(table)")
        #expect(table.lines.count == 2)

        let show = try await ctl.run(["release", "show", "1.1"])
        #expect(show.lines.contains("complete  yes"), "\(show)")
        #expect(show.lines.contains("sha256    \(manifest.sha256.hex)"))

        let unknown = try await ctl.run(["release", "show", "9.9"])
        #expect(unknown.status == 1)
        #expect(unknown.errorOutput == "cascadectl: no release 9.9\n")

        // A manifest signed by a key the coordinator does not trust is refused with its reason.
        let stranger = ctl.home.file("stranger.key")
        #expect(try await ctl.run(["key", "generate", "--out", stranger]).status == 0)
        let other = ctl.home.file("agent-1.2.tar")
        _ = try writeArtifact(other, size: 10_000, seed: 12, version: "1.2")
        #expect(try await ctl.run(["release", "create", "-k", stranger, "--name", "cascade-agent", "--version", "1.2", other],
                                    common: false).status == 0)
        let refused = try await ctl.run(["release", "push", other])
        #expect(refused.status == 1)
        #expect(refused.errorOutput.hasPrefix("cascadectl: "))
        #expect(refused.errorOutput.contains("key"), "\(refused)")

        // An artifact changed after 'release create' is caught before its bad chunk is sent.
        let changed = ctl.home.file("agent-1.3.tar")
        var changedBytes = try writeArtifact(changed, size: 100_000, seed: 13, version: "1.3")
        #expect(try await ctl.run(["release", "create", "--signing-key", keyFile, "--name", "cascade-agent", "--version", "1.3",
                                   "--chunk-size", "64KiB", changed], common: false).status == 0)
        changedBytes[70_000] ^= 0xFF
        try Data(changedBytes).write(to: URL(fileURLWithPath: changed))
        let mismatch = try await ctl.run(["release", "push", changed])
        #expect(mismatch.status == 1)
        #expect(mismatch.errorOutput.hasPrefix("cascadectl: \(changed) does not match its manifest at chunk 1 ("), "\(mismatch)")
        #expect(mismatch.errorOutput.hasSuffix("; was it changed after 'release create'?\n"), "\(mismatch)")
    }

    @Test("release authorize-downgrade signs an authorisation offline; rollout start takes it with --downgrade and refuses a downgrade without it")
    func downgradeAuthorisation() async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        try await fixture.push(try fixture.release("1.1"))
        let agents = try await makeAgents(fixture, [("a1-01", 0.9)], version: "2.0")
        defer { for agent in agents.values { agent.disconnect() } }
        let ctl = try Ctl(fixture: fixture)
        let keyFile = ctl.home.file("release.key")
        try SecretFile.create(at: keyFile, contents: fixture.signingKey.pemRepresentation)
        let file = ctl.home.file("down.auth")

        let upward = try await ctl.run(["release", "authorize-downgrade", "--signing-key", keyFile, "--from", "1.1", "--to", "2.0"], common: false)
        #expect(upward.status == 2)
        #expect(upward.errorOutput.hasPrefix("cascadectl: --to 2.0 must be lower than --from 1.1"), "\(upward)")

        let made = try await ctl.run(["release", "authorize-downgrade", "--signing-key", keyFile, "--from", "2.0", "--to", "1.1",
                                      "--expires", "1h", "--out", file], common: false)
        #expect(made.status == 0, "\(made)")
        #expect(made.lines.first == "downgrade cascade-agent from 2.0 (or lower) to 1.1")
        let signed = try SignedDowngrade(serializedBytes: Array(Data(contentsOf: URL(fileURLWithPath: file))))
        let authorization = try ReleaseVerifier(trustedKeys: [fixture.signingKey.publicKey]).verify(signed)
        #expect(authorization.name == "cascade-agent" && authorization.fromVersion == "2.0" && authorization.toVersion == "1.1")
        let now = UInt64(Date().timeIntervalSince1970)
        #expect(authorization.expiresAt > now + 3500 && authorization.expiresAt <= now + 3600)

        let refused = try await ctl.run(["rollout", "start", "--release", "1.1", "--rollback"])
        #expect(refused.status == 1)
        #expect(refused.errorOutput.contains("going down needs a downgrade authorisation"), "\(refused)")
        let started = try await ctl.run(["rollout", "start", "--release", "1.1", "--downgrade", file])
        #expect(started.status == 0, "\(started)")
        let status = try await fixture.operatorClient.unary(OperatorService.getRollout, RolloutQuery())
        #expect(status.releaseVersion == "1.1" && status.policy.rollback)
    }

    @Test("release verify finds a damaged release (exit 1), release list shows it, a re-push repairs it (exit 0), release delete removes it")
    func verifyAndDelete() async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        let release = try fixture.release("1.1")
        try await fixture.push(release)
        let ctl = try Ctl(fixture: fixture)
        let whole = try await ctl.run(["release", "verify", "1.1"])
        #expect(whole.status == 0, "\(whole)")
        #expect(whole.lines == ["release 1.1 is whole: every chunk matches its signed manifest"])

        let blob = fixture.data.file("coordinator") + "/blobs/sha256/\(release.manifest.sha256.hex)"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: blob))
        bytes[70_000] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: blob))
        let damaged = try await ctl.run(["release", "verify", "1.1"])
        #expect(damaged.status == 1)
        #expect(damaged.errorOutput == "cascadectl: release 1.1 is DAMAGED: chunk 1 of 5 does not match its signed manifest; push the same signed artifact again to repair it\n", "\(damaged)")
        let list = try await ctl.run(["release", "list"])
        #expect(list.lines.count == 2 && list.lines[1].contains(" DAMAGED "), "\(list)")

        try await fixture.push(release, indices: [1])
        #expect(try await ctl.run(["release", "verify", "1.1"]).status == 0)
        let deleted = try await ctl.run(["release", "delete", "1.1"])
        #expect(deleted.status == 0, "\(deleted)")
        #expect(deleted.lines == ["deleted release 1.1"])
        #expect(try await ctl.run(["release", "list"]).lines == ["no releases"])
    }

    @Test("rollout start, status, pause, pause again (refused), resume, abort; env-var and flag precedence; connection errors")
    func rolloutControl() async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        try await fixture.push(try fixture.release("1.1"))
        let agents = try await makeAgents(fixture, [("a1-01", 0.9), ("a1-02", 0.5)])
        defer { for agent in agents.values { agent.disconnect() } }
        var ctl = try Ctl(fixture: fixture)

        let started = try await ctl.run(["rollout", "start", "--release", "1.1", "--max-unavailable", "1", "--failure-budget", "50%"])
        #expect(started.status == 0, "\(started)")
        #expect(started.lines.count == 1)
        #expect(started.lines.first?.hasPrefix("rollout 1 (release 1.1) is ") == true, "\(started)")

        let paused = try await ctl.run(["rollout", "pause", "1", "--reason", "maintenance window"])
        #expect(paused.status == 0, "\(paused)")
        #expect(paused.lines == ["rollout 1 (release 1.1) is paused: maintenance window"])

        let again = try await ctl.run(["rollout", "pause", "1"])
        #expect(again.status == 1)
        #expect(again.output.isEmpty)
        #expect(again.errorOutput == "cascadectl: rollout 1 is paused and cannot pause\n")

        let status = try await ctl.run(["rollout", "status", "--json", "--agents"])
        #expect(status.status == 0, "\(status)")
        let object = try #require(try status.json() as? [String: Any])
        #expect(object["id"] as? Int == 1)
        #expect(object["state"] as? String == "paused")
        #expect((object["policy"] as? [String: Any])?["failureBudgetPercent"] as? Int == 50)
        #expect((object["agents"] as? [[String: Any]])?.compactMap { $0["agent"] as? String }.sorted() == ["a1-01", "a1-02"])

        let text = try await ctl.run(["rollout", "status", "1"])
        #expect(text.lines.first == "rollout   1", "\(text)")
        #expect(text.lines.contains("state     paused: maintenance window"), "\(text)")

        let resumed = try await ctl.run(["rollout", "resume", "1"])
        #expect(resumed.lines.first?.hasPrefix("rollout 1 (release 1.1) is running") == true, "\(resumed)")
        let aborted = try await ctl.run(["rollout", "abort", "1", "--reason", "enough"])
        #expect(aborted.lines == ["rollout 1 (release 1.1) is aborted: enough"], "\(aborted)")

        let list = try await ctl.run(["rollout", "list"])
        #expect(list.lines.count == 2, "\(list)")
        #expect(list.lines.last?.hasPrefix(" 1  1.1      aborted") == true, "\(list)")

        // CASCADE_COORDINATOR supplies the address when the flag is absent; the flag wins over it.
        let address = ctl.common[1]
        ctl.common.removeFirst(2)
        let fromEnvironment = try await ctl.run(["rollout", "status", "1"], environment: ["CASCADE_COORDINATOR": address])
        #expect(fromEnvironment.status == 0, "\(fromEnvironment)")
        let flagWins = try await ctl.run(["--coordinator", "127.0.0.1:1", "rollout", "status", "1"],
                                         environment: ["CASCADE_COORDINATOR": address])
        #expect(flagWins.status == 1)
        #expect(flagWins.errorOutput.hasPrefix("cascadectl: cannot connect to the coordinator at 127.0.0.1:1: "), "\(flagWins)")
        #expect(flagWins.errorOutput.hasSuffix("; check --coordinator and --ca\n"), "\(flagWins)")

        // A config file is the last source before the default.
        let config = ctl.home.file("ctl.conf")
        try "coordinator = \(address)\n".write(toFile: config, atomically: true, encoding: .utf8)
        let fromConfig = try await ctl.run(["rollout", "status", "1", "--config", config])
        #expect(fromConfig.status == 0, "\(fromConfig)")

        // An agent certificate is refused by the coordinator with a sentence.
        let agentCtl = try Ctl(fixture: fixture, uri: "cascade://agent/a1-09")
        let denied = try await agentCtl.run(["rollout", "list"])
        #expect(denied.status == 1)
        #expect(denied.errorOutput.hasPrefix("cascadectl: ") && denied.errorOutput.contains("operator certificate"), "\(denied)")
    }

    @Test("rollout watch prints plain lines and exits 0 when the rollout succeeds, 1 when it is aborted")
    func watch() async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        try await fixture.push(try fixture.release("1.1"))
        let agents = try await makeAgents(fixture, [("a1-01", 0.9), ("a1-02", 0.5)])
        defer { for agent in agents.values { agent.disconnect() } }
        let ctl = try Ctl(fixture: fixture)
        #expect(try await ctl.run(["rollout", "start", "--release", "1.1"]).status == 0)

        let watcher = try ctl.start(["rollout", "watch"])
        _ = try await watcher.line(startingWith: "rollout 1 (release 1.1): running", within: .seconds(10))
        upgrade(agents["a1-02"]!, rollout: 1)
        _ = try await agents["a1-02"]!.instruction("the second-instruction cue") { $0.secondInstructionCue?.rolloutID == 1 }
        upgrade(agents["a1-01"]!, rollout: 1)
        #expect(try await watcher.exitStatus(within: .seconds(15)) == 0, "\(watcher.lines) \(watcher.standardError)")
        _ = try await watcher.line(startingWith: "total ", within: .seconds(5))
        let row = try await watcher.line(startingWith: "127.0.1.0/24  [####################]", within: .seconds(5))
        #expect(row.hasPrefix("127.0.1.0/24  [####################]  2/2  healthy 2"), "\(watcher.lines)")
        #expect(watcher.lines.contains { $0.hasPrefix("rollout 1 (release 1.1): succeeded") }, "\(watcher.lines)")

        // An aborted rollout ends the watch with exit 1 and the reason.
        try await fixture.push(try fixture.release("1.2"))
        for agent in agents.values { agent.heartbeat(cpu: 0.5, version: "1.1") }
        let second = try await ctl.run(["rollout", "start", "--release", "1.2"])
        #expect(second.status == 0, "\(second)")
        let abortWatch = try ctl.start(["rollout", "watch", "2"])
        _ = try await abortWatch.line(startingWith: "rollout 2 (release 1.2): ", within: .seconds(10))
        #expect(try await ctl.run(["rollout", "abort", "2", "--reason", "bad canary"]).status == 0)
        #expect(try await abortWatch.exitStatus(within: .seconds(15)) == 1)
        let message = try await waitUntil(within: .seconds(5), "the watch's error line") {
            abortWatch.standardError.contains("\n") ? abortWatch.standardError : nil
        }
        #expect(message == "cascadectl: rollout 2 was aborted: bad canary\n")
    }

    @Test("rollout watch exits 4 when the rollout ends partial, and says how many agents did not upgrade")
    func watchPartial() async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        try await fixture.push(try fixture.release("1.1"))
        let agents = try await makeAgents(fixture, [("a1-01", 0.9), ("a1-02", 0.5), ("a1-03", 0.7)])
        defer { for agent in agents.values { agent.disconnect() } }
        let ctl = try Ctl(fixture: fixture)
        #expect(try await ctl.run(["rollout", "start", "--release", "1.1", "--failure-budget", "40%"]).status == 0)
        let watcher = try ctl.start(["rollout", "watch"])
        _ = try await watcher.line(startingWith: "rollout 1 (release 1.1): running", within: .seconds(10))
        agents["a1-02"]!.report(.instructed, rollout: 1)
        agents["a1-02"]!.report(.failed, rollout: 1, error: "no space left on the staging disk")
        upgrade(agents["a1-03"]!, rollout: 1)
        _ = try await agents["a1-03"]!.instruction("the second-instruction cue") { $0.secondInstructionCue?.rolloutID == 1 }
        upgrade(agents["a1-01"]!, rollout: 1)
        #expect(try await watcher.exitStatus(within: .seconds(15)) == 4, "\(watcher.lines) \(watcher.standardError)")
        #expect(watcher.standardError == "cascadectl: rollout 1 ended partial: succeeded with 0 rolled back and 1 failed of 3 agents (within the failure budget of 40%)\n")
        let status = try await ctl.run(["rollout", "status", "1"])
        #expect(status.output.contains("partial"), "\(status.output)")
    }
}

@Suite("cascadectl conventions")
struct CtlConventionTests {
    @Test("release create signs only what an agent would install: a tar with both programs and the same VERSION, of cascade-agent")
    func createRefusals() async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        let ctl = try Ctl(fixture: fixture)
        let keyFile = ctl.home.file("trusted.key")
        try SecretFile.create(at: keyFile, contents: fixture.signingKey.pemRepresentation)
        func create(_ file: String, version: String = "1.1", name: String = "cascade-agent") async throws -> (status: Int32, error: String) {
            let result = try await ctl.run(["release", "create", "--signing-key", keyFile, "--name", name, "--version", version, file], common: false)
            #expect(!FileManager.default.fileExists(atPath: file + ".manifest") || result.status == 0)
            return (result.status, result.errorOutput)
        }
        let random = ctl.home.file("random.bin")
        try Data((0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 31) }).write(to: URL(fileURLWithPath: random))
        let notTar = try await create(random)
        #expect(notTar.status == 1)
        #expect(notTar.error.hasPrefix("cascadectl: \(random) is not a release bundle an agent would install: "), "\(notTar.error)")

        func bundle(_ name: String, _ build: (inout UstarWriter) -> Void) throws -> String {
            var tar = UstarWriter()
            build(&tar)
            let path = ctl.home.file(name)
            try Data(tar.finished()).write(to: URL(fileURLWithPath: path))
            return path
        }
        let noVersion = try bundle("no-version.tar") { tar in
            tar.file("bin/cascade-agent", Array("x".utf8), mode: 0o755)
            tar.file("bin/cascade-upgrader", Array("x".utf8), mode: 0o755)
        }
        #expect(try await create(noVersion).error == "cascadectl: \(noVersion) is not a release bundle an agent would install: the bundle has no VERSION file\n")
        let noUpgrader = try bundle("no-upgrader.tar") { tar in
            tar.file("bin/cascade-agent", Array("x".utf8), mode: 0o755)
            tar.file("VERSION", "1.1\n")
        }
        #expect(try await create(noUpgrader).error == "cascadectl: \(noUpgrader) is not a release bundle an agent would install: the release 1.1 has no executable bin/cascade-upgrader\n")
        let good = ctl.home.file("good.tar")
        _ = try writeArtifact(good, size: 1000, seed: 1, version: "1.1")
        #expect(try await create(good, version: "1.1.0").error == "cascadectl: \(good) holds VERSION 1.1, not 1.1.0; agents refuse a release whose manifest and VERSION differ\n")
        let other = try await create(good, name: "nginx")
        #expect(other.status == 2)
        #expect(other.error.hasPrefix("cascadectl: agents install only releases named cascade-agent, not 'nginx'\n"), "\(other.error)")
        #expect(try await create(good).status == 0)
        #expect(FileManager.default.fileExists(atPath: good + ".manifest"))
    }

    @Test("a push of a version that exists in another spelling (1.1 vs 1.1.0) is refused, naming the existing one")
    func sameVersionOtherSpelling() async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        try await fixture.push(try fixture.release("1.1"))
        let error = await #expect(throws: RPCError.self) { try await fixture.push(try fixture.release("1.1.0")) }
        #expect(error?.code == .alreadyExists)
        #expect(error?.message == "release 1.1 already exists, and 1.1.0 is the same version spelled differently; push it as 1.1 or choose a new version")
    }

    @Test("--version on every program; help at every level exits 0")
    func versionAndHelp() async throws {
        for program in ["cascadectl", "cascade-coordinator"] {
            let process = try ChildProcess(try builtProduct(program), ["--version"], mergeStandardError: true)
            #expect(try await process.exitStatus(within: .seconds(20)) == 0)
            #expect(process.lines.count == 1)
            #expect(process.lines.first?.hasPrefix("\(program) \(BuildInfo.version) (wire 1.0, rpc 1.0, services 1.2; built 20") == true, "\(process.lines)")
        }
        for program in ["cascade-agent", "cascade-upgrader"] {
            let process = try ChildProcess(try builtProduct(program), ["--version"], mergeStandardError: true)
            #expect(try await process.exitStatus(within: .seconds(20)) == 0)
            #expect(process.lines == ["unknown (not running from a release)"], "\(process.lines)")
        }
        for arguments in [["cascadectl", "rollout", "--help"], ["cascadectl", "help", "release", "create"], ["cascadectl", "rollout", "pause", "--help"],
                          ["cascade-agent", "status", "--help"], ["cascade-agent", "run", "-h"], ["cascade-upgrader", "--help"],
                          ["cascade-coordinator", "--help"]] {
            let process = try ChildProcess(try builtProduct(arguments[0]), Array(arguments.dropFirst()), mergeStandardError: true)
            #expect(try await process.exitStatus(within: .seconds(20)) == 0, "\(arguments)")
            // The pipe is read asynchronously: the exit can be seen before the last lines are.
            let usage = try? await waitUntil(within: .seconds(10), "usage from \(arguments)") {
                process.lines.contains { $0.lowercased().hasPrefix("usage") } ? true : nil
            }
            #expect(usage == true, "\(arguments): \(process.lines.prefix(3))")
        }
    }

    @Test("rollout pause, resume and abort without an ID act on the active rollout, and say so when there is none")
    func controlDefaultsToActive() async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        try await fixture.push(try fixture.release("1.1"))
        let agents = try await makeAgents(fixture, [("a1-01", 0.9), ("a1-02", 0.5)])
        defer { for agent in agents.values { agent.disconnect() } }
        let ctl = try Ctl(fixture: fixture)
        let none = try await ctl.run(["rollout", "pause"])
        #expect(none.status == 1)
        #expect(none.errorOutput == "cascadectl: no rollout is active; name one by its ID\n")
        #expect(try await ctl.run(["rollout", "start", "--release", "1.1"]).status == 0)
        let paused = try await ctl.run(["rollout", "pause", "--json"])
        #expect(paused.status == 0, "\(paused)")
        #expect((try paused.json() as? [String: Any])?["state"] as? String == "paused")
        #expect(try await ctl.run(["rollout", "resume"]).status == 0)
        #expect(try await ctl.run(["rollout", "abort", "--reason", "test"]).status == 0)
        let after = try await ctl.run(["rollout", "abort"])
        #expect(after.errorOutput == "cascadectl: no rollout is active; the latest, 1, is aborted; name one by its ID\n")
    }

    @Test("completion bash and zsh: generated from the command tree, valid shell, and they complete commands, options and files")
    func completion() async throws {
        let scratch = try TemporaryDirectory(prefix: "cascade-completion")
        for shell in ["bash", "zsh"] {
            let process = try ChildProcess(try builtProduct("cascadectl"), ["completion", shell], mergeStandardError: true)
            #expect(try await process.exitStatus(within: .seconds(20)) == 0)
            let file = scratch.file("cascadectl.\(shell)")
            try (process.lines.joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
            let syntax = try ChildProcess("/bin/bash", ["-n", file], mergeStandardError: true)
            #expect(try await syntax.exitStatus(within: .seconds(20)) == 0, "\(shell): \(syntax.lines)")
            if shell == "zsh", FileManager.default.isExecutableFile(atPath: "/usr/bin/zsh") {
                let zsh = try ChildProcess("/usr/bin/zsh", ["-n", file], mergeStandardError: true)
                #expect(try await zsh.exitStatus(within: .seconds(20)) == 0, "\(zsh.lines)")
            }
        }
        // Completions as bash computes them, for a few command lines.
        let script = """
            source \(scratch.file("cascadectl.bash"))
            ask() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _cascadectl; echo "${COMPREPLY[*]}"; }
            cd \(scratch.path) && touch release.key
            ask cascadectl rollout pa
            ask cascadectl --timeout 3s rol
            ask cascadectl rollout start --rel
            ask cascadectl release create --signing-key rel
            ask cascadectl comp
            """
        let run = try ChildProcess("/bin/bash", ["-c", script], mergeStandardError: true)
        #expect(try await run.exitStatus(within: .seconds(20)) == 0)
        #expect(run.lines == ["pause", "rollout", "--release", "release.key", "completion"], "\(run.lines)")
        let bad = try await Ctl().run(["completion", "fish"], common: false)
        #expect(bad.status == 2)
        #expect(bad.errorOutput.hasPrefix("cascadectl: unknown shell 'fish': expected bash or zsh\n"), "\(bad)")
    }

    @Test("release inspect prints a signed manifest offline, checks its signature with --trusted-key, and refuses what is not a manifest")
    func inspect() async throws {
        let ctl = try Ctl()
        let key = ctl.home.file("release.key")
        #expect(try await ctl.run(["key", "generate", "--out", key], common: false).status == 0)
        let artifact = ctl.home.file("agent-1.4.tar")
        let bytes = try writeArtifact(artifact, size: 70_000, seed: 3, version: "1.4")
        #expect(try await ctl.run(["release", "create", "-k", key, "--version", "1.4", "--chunk-size", "64KiB", artifact], common: false).status == 0)
        let manifestFile = artifact + ".manifest"
        let signed = try SignedManifest(serializedBytes: Array(Data(contentsOf: URL(fileURLWithPath: manifestFile))))
        let manifest = try Manifest(serializedBytes: signed.manifestBytes)

        let checked = try await ctl.run(["release", "inspect", manifestFile, "--trusted-key", key + ".pub", "--chunks"], common: false)
        #expect(checked.status == 0, "\(checked)")
        #expect(checked.lines.first == "release   1.4 (cascade-agent)")
        #expect(checked.lines.contains("size      \(bytes.count) bytes (\(kib(bytes.count)))"))
        #expect(checked.lines.contains("sha256    \(manifest.sha256.hex)"))
        #expect(checked.lines.contains("signature verified (key id \(signed.keyID))"))
        #expect(checked.lines.contains("manifest  sha256 \(signed.manifestDigest.hex)"))
        #expect(checked.lines.filter { $0.hasPrefix("chunk ") }.count == manifest.chunkCount)

        let unchecked = try await ctl.run(["release", "inspect", manifestFile, "--json"], common: false)
        #expect((try unchecked.json() as? [String: Any])?["signature"] as? String == "not checked (give --trusted-key)")

        let stranger = ctl.home.file("stranger.key")
        #expect(try await ctl.run(["key", "generate", "--out", stranger], common: false).status == 0)
        let refused = try await ctl.run(["release", "inspect", manifestFile, "--trusted-key", stranger + ".pub"], common: false)
        #expect(refused.status == 1)
        #expect(refused.errorOutput.hasPrefix("cascadectl: the manifest \(manifestFile) does not verify: "), "\(refused)")
        let notManifest = try await ctl.run(["release", "inspect", artifact], common: false)
        #expect(notManifest.status == 1)
        #expect(notManifest.errorOutput == "cascadectl: \(artifact) is not a signed Cascade manifest (give the .manifest file that 'release create' wrote)\n")
    }

    @Test("JSON output has one time form (RFC 3339 UTC with milliseconds), no epoch-millisecond keys, and no always-empty scope")
    func jsonTimes() async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        try await fixture.push(try fixture.release("1.1"))
        let agents = try await makeAgents(fixture, [("a1-01", 0.9), ("a1-02", 0.5)])
        defer { for agent in agents.values { agent.disconnect() } }
        let ctl = try Ctl(fixture: fixture)
        #expect(try await ctl.run(["rollout", "start", "--release", "1.1"]).status == 0)
        let rfc3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/
        var times = 0
        func check(_ value: Any, path: String) {
            if let object = value as? [String: Any] {
                for (key, member) in object {
                    #expect(!key.hasSuffix("Ms"), "\(path).\(key) is an epoch-millisecond key")
                    if ["at", "createdAt", "startedAt", "finishedAt", "updatedAt", "lastSeen", "registeredAt", "leaderSince", "pushedAt"].contains(key),
                       let text = member as? String {
                        #expect(text.wholeMatch(of: rfc3339) != nil, "\(path).\(key) = \(text)")
                        times += 1
                    }
                    check(member, path: "\(path).\(key)")
                }
            } else if let array = value as? [Any] {
                for member in array { check(member, path: path + "[]") }
            }
        }
        for command in [["rollout", "status", "--agents", "--json"], ["agents", "list", "--json"], ["clusters", "list", "--json"],
                        ["events", "--json"], ["release", "list", "--json"], ["rollout", "list", "--json"]] {
            let result = try await ctl.run(command)
            #expect(result.status == 0, "\(command): \(result)")
            check(try result.json(), path: command.joined(separator: " "))
        }
        #expect(times >= 10, "only \(times) times were checked")
        let status = try #require(try await ctl.run(["rollout", "status", "--json"]).json() as? [String: Any])
        #expect(status["allClusters"] as? Bool == true)
        #expect(status["clusters"] == nil)
        #expect(HumanFormat.timestamp(epochMilliseconds: 1_767_225_600_007) == "2026-01-01T00:00:00.007Z")
        #expect(HumanFormat.timestamp(epochMilliseconds: -1) == "1969-12-31T23:59:59.999Z")
    }

    @Test("release list is newest first, as its help and services.md say, and --limit cuts it")
    func releaseListOrder() async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        for version in ["1.1", "1.2", "1.3"] { try await fixture.push(try fixture.release(version)) }
        let ctl = try Ctl(fixture: fixture)
        let all = try #require(try await ctl.run(["release", "list", "--json"]).json() as? [[String: Any]])
        #expect(all.compactMap { $0["version"] as? String } == ["1.3", "1.2", "1.1"])
        let one = try #require(try await ctl.run(["release", "list", "--json", "--limit", "1"]).json() as? [[String: Any]])
        #expect(one.compactMap { $0["version"] as? String } == ["1.3"])
    }
}
