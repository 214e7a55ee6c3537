import CascadeAgent
import CascadeInstall
import CascadeTestSupport
import Foundation
import Testing

/// Disk hygiene: an agent keeps the current and previous release of each program and the
/// download in flight; the rest goes after each settled switch and on `cascade-agent gc`.
@Suite("Disk hygiene")
struct DiskHygieneTests {
    /// A fake download `<version>-<sha>.artifact` + `.progress` of `bytes` bytes, as the fleet
    /// runtime stages them; returns the artifact's path.
    @discardableResult
    static func download(_ version: String, bytes: Int, in layout: AgentLayout) throws -> String {
        try Posix.makeDirectories(layout.downloadsDirectory)
        let stem = "\(layout.downloadsDirectory)/\(version)-0123456789abcdef"
        try Data(count: bytes).write(to: URL(fileURLWithPath: stem + ".artifact"))
        try Data(count: 8).write(to: URL(fileURLWithPath: stem + ".progress"))
        return stem + ".artifact"
    }

    @Test("three successive upgrades: only current and previous of each program remain, old downloads go, the one in flight stays")
    func threeUpgrades() async throws {
        let pair = try AgentPair()
        defer { pair.stop() }
        try pair.start()
        _ = try await pair.waitSettled(main: "1.0", upgrader: "1.0")
        // A download a live process holds open (the runtime locks what it downloads).
        let inFlight = try Self.download("1.9", bytes: 1000, in: pair.layout)
        let hold = try #require(try FileLock.tryAcquire(inFlight))
        var previous = "1.0"
        for version in ["1.1", "1.2", "1.3"] {
            try Self.download(previous, bytes: 4096, in: pair.layout)
            let bundle = try TestBundles.make(version, in: pair.directory)
            let (status, process) = try await pair.cli(["upgrade", "--root", pair.layout.root, "--timeout", "20", bundle])
            #expect(status == 0, "\(process.standardError)\n\(pair.log)")
            _ = try await pair.waitSettled(main: version, upgrader: version)
            for program in Program.allCases {
                #expect(Posix.list(pair.layout.releasesDirectory(program)) == [previous, version], "\(program) after \(version)")
            }
            #expect(Posix.list(pair.layout.downloadsDirectory) == ["1.9-0123456789abcdef.artifact", "1.9-0123456789abcdef.progress"],
                    "the download of \(previous) is gone after \(version); the one in flight stays")
            previous = version
        }
        withExtendedLifetime(hold) {}
    }

    @Test("cascade-agent gc removes leftovers, says what it freed (paths and bytes), keeps current, previous and the download in flight")
    func gcOnDemand() async throws {
        let pair = try AgentPair()
        defer { pair.stop() }
        let layout = pair.layout
        let main = layout.releasesDirectory(.main)
        let upgrader = layout.releasesDirectory(.upgrader)
        // Leftovers: an old release, an interrupted unpack, an old upgrader copy, downloads.
        try Posix.makeDirectories("\(main)/0.9/bin")
        try Data(count: 1000).write(to: URL(fileURLWithPath: "\(main)/0.9/bin/cascade-agent"))
        try Posix.makeDirectories("\(main)/.incoming-abc123")
        try Data(count: 10).write(to: URL(fileURLWithPath: "\(main)/.incoming-abc123/VERSION"))
        try Posix.makeDirectories("\(upgrader)/0.8")
        try Data(count: 300).write(to: URL(fileURLWithPath: "\(upgrader)/0.8/VERSION"))
        try Self.download("0.9", bytes: 2000, in: layout)
        let inFlight = try Self.download("1.1", bytes: 500, in: layout)
        var hold = try FileLock.tryAcquire(inFlight)
        try #require(hold != nil)

        let gc = try ChildProcess(try builtProduct("cascade-agent"), ["gc", "--root", layout.root])
        let (status, lines) = try await gc.finished(lastLine: "freed 3318 bytes")
        #expect(status == 0, "\(gc.standardError)")
        let expected = [
            "freed \(main)/.incoming-abc123 (10 bytes)",
            "freed \(main)/0.9 (1000 bytes)",
            "freed \(upgrader)/0.8 (300 bytes)",
            "freed \(layout.downloadsDirectory)/0.9-0123456789abcdef.artifact (2000 bytes)",
            "freed \(layout.downloadsDirectory)/0.9-0123456789abcdef.progress (8 bytes)",
            "kept the download \(inFlight): it is in flight",
            "freed 3318 bytes in 5 paths",
        ]
        #expect(lines == expected, "\(lines)")
        #expect(Posix.list(main) == ["1.0"])
        #expect(Posix.list(upgrader) == ["1.0"])
        #expect(Posix.list(layout.downloadsDirectory) == ["1.1-0123456789abcdef.artifact", "1.1-0123456789abcdef.progress"])
        #expect(ReleaseStore(layout: layout).currentVersion(.main) == "1.0")

        // Once nothing holds it, the download is no longer in flight; then nothing is left to free.
        hold = nil
        let second = try ChildProcess(try builtProduct("cascade-agent"), ["gc", "--root", layout.root])
        #expect(try await second.finished(lastLine: "freed 508 bytes").lines.last == "freed 508 bytes in 2 paths")
        let third = try ChildProcess(try builtProduct("cascade-agent"), ["gc", "--root", layout.root])
        #expect(try await third.finished(lastLine: "nothing to free").lines == ["nothing to free in \(layout.root)"])
    }
}
