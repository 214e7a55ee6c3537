import CascadeInstall
import CascadeTestSupport
import Foundation
import Testing

@Suite("Switch records and repair")
struct SwitchJournalTests {
    /// A root with releases 1.0 and 1.1 of the main program and `current` at 1.0.
    private func root() throws -> (TemporaryDirectory, AgentLayout, ReleaseStore) {
        let directory = try TemporaryDirectory()
        let layout = AgentLayout(root: directory.file("root"))
        try layout.prepare()
        let store = ReleaseStore(layout: layout)
        for version in ["1.0", "1.1"] {
            _ = try store.add(bundle: try TestBundles.make(version, in: directory))
        }
        try store.point(.main, at: "1.0")
        return (directory, layout, store)
    }

    @Test("an unconfirmed switch is rolled back to the release it came from", arguments: [SwitchRecord.Phase.prepared, .switched])
    func unconfirmedRollsBack(phase: SwitchRecord.Phase) throws {
        let (directory, layout, store) = try root()
        defer { withExtendedLifetime(directory) {} }
        let journal = SwitchJournal(layout: layout)
        try journal.save(SwitchRecord(program: .main, from: "1.0", to: "1.1", phase: phase))
        if phase == .switched { try store.point(.main, at: "1.1") }
        let outcome = try journal.repair(.main)
        #expect(outcome == .rolledBack(program: .main, from: "1.0", to: "1.1"))
        #expect(store.currentVersion(.main) == "1.0")
        #expect(try journal.load(.main) == nil)
        #expect(try journal.repair(.main) == nil, "a second repair has nothing to do")
    }

    @Test("a confirmed switch is completed: current stays, previous names the old release")
    func confirmedCompletes() throws {
        let (directory, layout, store) = try root()
        defer { withExtendedLifetime(directory) {} }
        let journal = SwitchJournal(layout: layout)
        try store.point(.main, at: "1.1")
        try journal.save(SwitchRecord(program: .main, from: "1.0", to: "1.1", phase: .confirmed))
        #expect(try journal.repair(.main) == .completed(program: .main, version: "1.1"))
        #expect(store.currentVersion(.main) == "1.1")
        #expect(store.previousVersion(.main) == "1.0")
    }

    @Test("a link left half-switched and unpacks left half-done are cleaned up")
    func leftoversAreRemoved() throws {
        let (directory, layout, store) = try root()
        defer { withExtendedLifetime(directory) {} }
        symlink("releases/1.1", "\(layout.currentLink(.main)).new")
        mkdir("\(layout.releasesDirectory(.main))/.incoming-abc123", 0o755)
        _ = try SwitchJournal(layout: layout).repair(.main)
        #expect(Posix.fileType("\(layout.currentLink(.main)).new") == nil)
        #expect(store.currentVersion(.main) == "1.0")
        #expect(Posix.list(layout.releasesDirectory(.main)) == ["1.0"], "1.1 is neither current nor previous")
    }

    @Test("pruning keeps only the current and previous releases")
    func pruneKeepsTwo() throws {
        let (directory, layout, store) = try root()
        _ = try store.add(bundle: try TestBundles.make("1.2", in: directory))
        try store.point(.main, at: "1.2")
        try store.point(.main, current: false, at: "1.1")
        store.prune(.main)
        #expect(Posix.list(layout.releasesDirectory(.main)) == ["1.1", "1.2"])
    }

    @Test("the state directory is private and a current release cannot be replaced")
    func stateIsPrivate() throws {
        let (directory, layout, store) = try root()
        var info = stat()
        #expect(stat(layout.stateDirectory, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o700)
        let error = #expect(throws: InstallError.self) { _ = try store.add(bundle: try TestBundles.make("1.0", in: directory)) }
        #expect(error?.code == .refused)
    }

    @Test("agent.conf is read, and a bad line is named")
    func configParses() throws {
        let directory = try TemporaryDirectory()
        let layout = AgentLayout(root: directory.path)
        try "health-deadline = 2.5 # short\n\npoll-interval=0.01\n".write(toFile: layout.configFile, atomically: true, encoding: .utf8)
        let config = try AgentConfig.load(layout)
        #expect(config.healthDeadline == .milliseconds(2500))
        #expect(config.pollInterval == .milliseconds(10))
        try "health-deadline = soon\n".write(toFile: layout.configFile, atomically: true, encoding: .utf8)
        let error = #expect(throws: InstallError.self) { _ = try AgentConfig.load(layout) }
        #expect(error?.message.contains("line 1") == true)
    }
}
