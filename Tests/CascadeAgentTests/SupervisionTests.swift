import CascadeAgent
import CascadeInstall
import CascadeTestSupport
import Foundation
import Testing

@Suite("Mutual supervision")
struct SupervisionTests {
    @Test("the upgrader starts the main program; status shows both versions and pids")
    func pairStarts() async throws {
        let pair = try AgentPair()
        defer { pair.stop() }
        try pair.start()
        let pids = try await pair.waitSettled(main: "1.0", upgrader: "1.0")
        #expect(pids.main != pids.upgrader)
        let (status, process) = try await pair.cli(["status", "--root", pair.layout.root])
        #expect(status == 0)
        let line = try await process.line(startingWith: "  process:          running, pid \(pids.main)")
        #expect(line.hasSuffix("version 1.0"))
        // A lone pair (no fleet.conf) is not a failure.
        #expect(try await process.line(startingWith: "fleet:") == "fleet:            not configured (no fleet.conf)")
    }

    @Test("a main program killed with SIGKILL is restarted by the upgrader")
    func mainIsRestarted() async throws {
        let pair = try AgentPair()
        defer { pair.stop() }
        try pair.start()
        let before = try await pair.waitSettled(main: "1.0", upgrader: "1.0")
        kill(before.main, SIGKILL)
        let after = try await waitUntil(within: .seconds(10), "a new main program") {
            pair.settled(main: "1.0", upgrader: "1.0").flatMap { $0.main != before.main ? $0 : nil }
        }
        #expect(after.upgrader == before.upgrader)
    }

    @Test("an upgrader killed with SIGKILL is restarted by the main program")
    func upgraderIsRestarted() async throws {
        let pair = try AgentPair()
        defer { pair.stop() }
        try pair.start()
        let before = try await pair.waitSettled(main: "1.0", upgrader: "1.0")
        kill(before.upgrader, SIGKILL)
        let after = try await waitUntil(within: .seconds(10), "a new upgrader") {
            pair.settled(main: "1.0", upgrader: "1.0").flatMap { $0.upgrader != before.upgrader ? $0 : nil }
        }
        #expect(after.main == before.main)
        // The restarted upgrader is not the main program's parent, yet it still watches it.
        kill(after.main, SIGKILL)
        _ = try await waitUntil(within: .seconds(10), "a main program restarted by the new upgrader") {
            pair.settled(main: "1.0", upgrader: "1.0").flatMap { $0.main != after.main ? $0 : nil }
        }
    }

    @Test("a main program that keeps dying is reported as a crash loop")
    func crashLoopIsReported() async throws {
        let pair = try AgentPair(behavior: ["main=exit-at-start"])
        defer { pair.stop() }
        try pair.start()
        let reason = try await waitUntil(within: .seconds(15), "a crash loop record") { pair.status(.main).crashLoop }
        #expect(reason.contains("restarted"))
        #expect(pair.status(.upgrader).running != nil, "the upgrader keeps running")
    }

    @Test("stop ends both programs, neither restarts the other, and a later start brings them back")
    func stopEndsThePair() async throws {
        let pair = try AgentPair()
        defer { pair.stop() }
        try pair.start()
        _ = try await pair.waitSettled(main: "1.0", upgrader: "1.0")
        let (status, _) = try await pair.cli(["stop", "--root", pair.layout.root])
        #expect(status == 0)
        #expect(!FileLock.isHeld(pair.layout.lockFile(.main)))
        #expect(!FileLock.isHeld(pair.layout.lockFile(.upgrader)))
        // Started again as systemd does (--standby finds no other upgrader), the pair comes back.
        try pair.start(standby: true)
        _ = try await pair.waitSettled(main: "1.0", upgrader: "1.0")
    }
}

@Suite("The systemd standby")
struct StandbyTests {
    @Test("a standby upgrader waits through an upgrade and takes over from a killed upgrader on the current release")
    func standbyTakesOver() async throws {
        let pair = try AgentPair()
        defer { pair.stop() }
        try pair.start()
        _ = try await pair.waitSettled(main: "1.0", upgrader: "1.0")
        let standby = try pair.start(standby: true)
        _ = try await waitUntil(within: .seconds(10), "the standby to stand by") {
            pair.log.contains("cascade-upgrader[\(standby)] startup: the upgrader already runs; standing by") ? true : nil
        }
        let bundle = try TestBundles.make("1.1", in: pair.directory)
        let (status, process) = try await pair.cli(["upgrade", "--root", pair.layout.root, "--timeout", "20", bundle])
        #expect(status == 0, "\(process.standardError)\n\(pair.log)")
        let upgraded = try await pair.waitSettled(main: "1.1", upgrader: "1.1")
        #expect(upgraded.upgrader != standby, "the standby did not steal the switch")
        kill(upgraded.upgrader, SIGKILL)
        let after = try await waitUntil(within: .seconds(10), "a new upgrader on 1.1") {
            pair.settled(main: "1.1", upgrader: "1.1").flatMap { $0.upgrader != upgraded.upgrader ? $0 : nil }
        }
        #expect(after.main == upgraded.main)
    }
}
