import CascadeAgent
import CascadeInstall
import CascadeTestSupport
import Foundation
import Testing

@Suite("Kill -9 at each step of a switch")
struct FaultPointTests {
    /// A fault point, whether both programs are dead after it (so the test starts the pair
    /// again, as systemd would), and the versions the repaired pair settles on.
    struct Case: Sendable, CustomTestStringConvertible {
        let point: String
        let bothDie: Bool
        let main: String
        let upgrader: String
        var testDescription: String { point }
    }

    static let cases: [Case] = [
        Case(point: "main-after-record", bothDie: false, main: "1.0", upgrader: "1.0"),
        Case(point: "main-after-stop", bothDie: true, main: "1.0", upgrader: "1.0"),
        Case(point: "main-link-created", bothDie: true, main: "1.0", upgrader: "1.0"),
        Case(point: "main-after-switch", bothDie: true, main: "1.0", upgrader: "1.0"),
        Case(point: "main-after-start", bothDie: false, main: "1.0", upgrader: "1.0"),
        Case(point: "main-after-confirm", bothDie: false, main: "1.1", upgrader: "1.1"),
        Case(point: "upgrader-after-record", bothDie: false, main: "1.1", upgrader: "1.1"),
        Case(point: "upgrader-after-stop", bothDie: true, main: "1.1", upgrader: "1.1"),
        Case(point: "upgrader-link-created", bothDie: true, main: "1.1", upgrader: "1.1"),
        Case(point: "upgrader-after-switch", bothDie: true, main: "1.1", upgrader: "1.1"),
        Case(point: "upgrader-after-start", bothDie: false, main: "1.1", upgrader: "1.1"),
        Case(point: "upgrader-after-confirm", bothDie: false, main: "1.1", upgrader: "1.1"),
    ]

    @Test("the next start repairs the switch: one current per program, and it runs", arguments: cases)
    func repairedAfterKill(_ fault: Case) async throws {
        let pair = try AgentPair()
        defer { pair.stop() }
        try pair.start(environment: ["CASCADE_FAULT_POINT": fault.point])
        _ = try await pair.waitSettled(main: "1.0", upgrader: "1.0")
        let handoff = ReleaseHandoff(layout: pair.layout)
        let version = try handoff.stage(bundle: try TestBundles.make("1.1", in: pair.directory))
        try handoff.handOff(version: version)
        let marker = "\(pair.layout.stateDirectory)/fault-\(fault.point).fired"
        _ = try await waitUntil(within: .seconds(15), "the fault point \(fault.point)") { Posix.fileType(marker) != nil ? true : nil }
        if fault.bothDie {
            _ = try await waitUntil(within: .seconds(10), "both programs gone") {
                !FileLock.isHeld(pair.layout.lockFile(.main)) && !FileLock.isHeld(pair.layout.lockFile(.upgrader)) ? true : nil
            }
            try pair.start()
        }
        _ = try await pair.waitSettled(main: fault.main, upgrader: fault.upgrader, within: .seconds(30))
        for program in Program.allCases {
            #expect(Posix.fileType(pair.layout.currentLink(program)) == S_IFLNK)
            #expect(Posix.fileType("\(pair.layout.currentLink(program)).new") == nil)
            #expect(try ReleaseCheck.validate("\(pair.layout.currentLink(program))") == (program == .main ? fault.main : fault.upgrader))
        }
    }
}
