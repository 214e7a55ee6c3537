import CascadeAgent
import CascadeInstall
import CascadeTestSupport
import Foundation
import Testing

@Suite("Upgrades and rollback")
struct UpgradeTests {
    @Test("upgrading 1.0 to 1.1 restarts both programs on 1.1 and keeps 1.0 as previous")
    func upgradeBoth() async throws {
        let pair = try AgentPair()
        defer { pair.stop() }
        try pair.start()
        let before = try await pair.waitSettled(main: "1.0", upgrader: "1.0")
        let bundle = try TestBundles.make("1.1", in: pair.directory, gzip: true)
        let (status, process) = try await pair.cli(["upgrade", "--root", pair.layout.root, "--timeout", "20", bundle])
        #expect(status == 0, "\(process.standardError)\n\(pair.log)")
        _ = try await process.line(startingWith: "the upgrader: 1.1 upgraded")
        let after = try await pair.waitSettled(main: "1.1", upgrader: "1.1")
        #expect(after.main != before.main)
        #expect(after.upgrader != before.upgrader)
        for program in Program.allCases {
            #expect(pair.status(program).previous == "1.0")
            #expect(try Posix.readText("\(pair.layout.currentLink(program))/VERSION") == "1.1")
            #expect(Posix.list(pair.layout.releasesDirectory(program)) == ["1.0", "1.1"])
        }
    }

    @Test("a 1.1 that does not come up healthy is rolled back, recorded, and not retried", arguments: [
        "main=exit-at-start", "main=never-healthy",
    ])
    func badMainRollsBack(behavior: String) async throws {
        let pair = try AgentPair()
        defer { pair.stop() }
        try pair.start()
        let before = try await pair.waitSettled(main: "1.0", upgrader: "1.0")
        let bundle = try TestBundles.make("1.1", in: pair.directory, behavior: [behavior])
        let started = ContinuousClock.now
        let (status, process) = try await pair.cli(["upgrade", "--root", pair.layout.root, "--timeout", "20", bundle])
        #expect(status == 1)
        _ = try await process.line(startingWith: "the main program: 1.1 rolled back")
        let after = try await pair.waitSettled(main: "1.0", upgrader: "1.0")
        #expect(ContinuousClock.now - started < .seconds(15), "rolled back within the health deadline")
        #expect(after.upgrader == before.upgrader)
        #expect(after.main != before.main, "the old release was restarted")
        #expect(pair.status(.main).failedVersions["1.1"] != nil)
        #expect(pair.status(.main).previous == nil)
        #expect(Posix.list(pair.layout.releasesDirectory(.main)) == ["1.0"], "the rolled-back release is removed")

        // Asked again, the failed version is refused without touching the running program,
        // and the refused bundle leaves nothing behind.
        let again = try await pair.cli(["upgrade", "--root", pair.layout.root, "--timeout", "20", bundle])
        #expect(again.status == 1)
        _ = try await waitUntil(within: .seconds(5), "the refusal") {
            again.process.standardError.contains("failed before") ? true : nil
        }
        #expect(pair.settled(main: "1.0", upgrader: "1.0")?.main == after.main)
        #expect(Posix.list(pair.layout.releasesDirectory(.main)) == ["1.0"], "the refused release is removed")
    }

    @Test("the rollout's health timeout is the one the upgrader uses: a release healthy after 6 s is rolled back under 2 s and kept under 10 s, though agent.conf says 4 s")
    func healthTimeoutTravels() async throws {
        let pair = try AgentPair()
        defer { pair.stop() }
        try pair.start()
        _ = try await pair.waitSettled(main: "1.0", upgrader: "1.0")
        let slow = try TestBundles.make("1.1", in: pair.directory, behavior: ["main=healthy-after-6s"])
        let handoff = ReleaseHandoff(layout: pair.layout)
        // Shorter than agent.conf's 4 s, and than the release needs: rolled back.
        _ = try handoff.deliver(bundle: slow, expectedVersion: "1.1", healthDeadline: .seconds(2))
        _ = try await waitUntil(within: .seconds(20), "the rollback of 1.1") { pair.status(.main).failedVersions["1.1"] }
        #expect(pair.status(.main).failedVersions["1.1"]?.contains("did not report healthy within 2.0 seconds") == true,
                "\(pair.status(.main).failedVersions)")
        _ = try await pair.waitSettled(main: "1.0", upgrader: "1.0")
        // Longer than agent.conf's 4 s, which would have rolled it back: it is kept.
        _ = try handoff.deliver(bundle: slow, expectedVersion: "1.1", retry: true, healthDeadline: .seconds(10))
        _ = try await pair.waitSettled(main: "1.1", upgrader: "1.1", within: .seconds(40))
        #expect(pair.status(.main).failedVersions["1.1"] == nil)
    }

    @Test("--retry tries a failed version again")
    func retryTriesAgain() async throws {
        let pair = try AgentPair()
        defer { pair.stop() }
        try pair.start()
        _ = try await pair.waitSettled(main: "1.0", upgrader: "1.0")
        let bad = try TestBundles.make("1.1", in: pair.directory, behavior: ["main=exit-at-start"])
        #expect(try await pair.cli(["upgrade", "--root", pair.layout.root, "--timeout", "20", bad]).status == 1)
        _ = try await pair.waitSettled(main: "1.0", upgrader: "1.0")
        let good = try TestBundles.make("1.1", in: pair.directory)
        let retried = try await pair.cli(["upgrade", "--root", pair.layout.root, "--retry", "--timeout", "20", good])
        #expect(retried.status == 0, "\(retried.process.standardError)\n\(pair.log)")
        _ = try await pair.waitSettled(main: "1.1", upgrader: "1.1")
        #expect(pair.status(.main).failedVersions.isEmpty)
    }

    @Test("a broken upgrader in 1.1 is rolled back and the agent keeps working", arguments: [
        "upgrader=exit-at-start", "upgrader=never-healthy",
    ])
    func brokenUpgraderRollsBack(behavior: String) async throws {
        let pair = try AgentPair()
        defer { pair.stop() }
        try pair.start()
        _ = try await pair.waitSettled(main: "1.0", upgrader: "1.0")
        let bundle = try TestBundles.make("1.1", in: pair.directory, behavior: [behavior])
        let (status, process) = try await pair.cli(["upgrade", "--root", pair.layout.root, "--timeout", "20", bundle])
        #expect(status == 1)
        _ = try await process.line(startingWith: "the upgrader: 1.1 rolled back")
        let pids = try await pair.waitSettled(main: "1.1", upgrader: "1.0")
        #expect(pair.status(.upgrader).failedVersions["1.1"] != nil)
        #expect(Posix.list(pair.layout.releasesDirectory(.upgrader)) == ["1.0"], "the rolled-back upgrader release is removed")
        // The agent keeps working: the old upgrader still restarts the new main program.
        kill(pids.main, SIGKILL)
        _ = try await waitUntil(within: .seconds(10), "main 1.1 restarted by upgrader 1.0") {
            pair.settled(main: "1.1", upgrader: "1.0").flatMap { $0.main != pids.main ? $0 : nil }
        }
    }
}
