import CascadeCLI
import Testing

@Suite("Live view")
struct LiveViewTests {
    static func snapshot(done: Int, downloading: Int, bytes: Int64, eta: Duration?, title: String = "rollout r-7 of 1.1: running") -> LiveSnapshot {
        LiveSnapshot(title: title, rows: [
            LiveRow(name: "127.0.1.0/24", done: done, total: 4,
                    states: [.init("healthy", done), .init("downloading", downloading), .init("pending", 4 - done - downloading)],
                    bytes: bytes, eta: eta),
            LiveRow(name: "127.0.2.0/24", done: 0, total: 4, states: [.init("pending", 4)], bytes: 0),
        ], footer: ["total 3/8 healthy"])
    }

    @Test("Rows align, show a bar, non-zero state counts, bytes and the ETA while unfinished")
    func layout() {
        let lines = LiveLayout.lines(for: Self.snapshot(done: 3, downloading: 1, bytes: 6_501_171, eta: .seconds(4)), barWidth: 12)
        #expect(lines == [
            "rollout r-7 of 1.1: running",
            "127.0.1.0/24  [#########---]  3/4  healthy 3 · downloading 1  6.2 MiB  ETA 4s",
            "127.0.2.0/24  [------------]  0/4  pending 4                      0 B",
            "total 3/8 healthy",
        ])
    }

    @Test("Columns nobody fills are dropped and a finished row shows no ETA")
    func sparse() {
        let snapshot = LiveSnapshot(title: "t", rows: [
            LiveRow(name: "a", done: 2, total: 2, eta: .seconds(9)),
            LiveRow(name: "bb", done: 10, total: 100),
        ])
        #expect(LiveLayout.lines(for: snapshot, barWidth: 4) == ["t", "a   [####]     2/2", "bb  [----]  10/100"])
        #expect(LiveLayout.bar(done: 5, total: 0, width: 3) == "[---]")
        #expect(LiveLayout.bar(done: 9, total: 4, width: 3) == "[###]")
    }

    @Test("Plain mode prints everything first, then only rows whose progress changed, then what differs at the end")
    func plain() {
        let captured = CapturedConsole(isTerminal: true)
        var renderer = LiveRenderer(console: captured.console, mode: .plain, barWidth: 4)
        renderer.update(Self.snapshot(done: 1, downloading: 1, bytes: 1024, eta: .seconds(9)))
        // Only bytes and ETA moved: nothing is printed.
        renderer.update(Self.snapshot(done: 1, downloading: 1, bytes: 2048, eta: .seconds(8)))
        renderer.update(Self.snapshot(done: 2, downloading: 1, bytes: 4096, eta: .seconds(5)))
        renderer.finish(Self.snapshot(done: 4, downloading: 0, bytes: 8192, eta: nil, title: "rollout r-7 of 1.1: succeeded"))
        #expect(captured.output == """
        rollout r-7 of 1.1: running
        127.0.1.0/24  [#---]  1/4  healthy 1 · downloading 1 · pending 2  1.0 KiB  ETA 9s
        127.0.2.0/24  [----]  0/4  pending 4                                  0 B
        total 3/8 healthy
        127.0.1.0/24  [##--]  2/4  healthy 2 · downloading 1 · pending 1  4.0 KiB  ETA 5s
        rollout r-7 of 1.1: succeeded
        127.0.1.0/24  [####]  4/4  healthy 4  8.0 KiB
        127.0.2.0/24  [----]  0/4  pending 4      0 B

        """)
    }

    @Test("Terminal mode redraws in place: cursor up over the last frame, clear, draw; nothing if unchanged")
    func terminal() {
        let captured = CapturedConsole()
        var renderer = LiveRenderer(console: captured.console, mode: .terminal(columns: nil), barWidth: 4)
        let first = LiveSnapshot(title: "t", rows: [LiveRow(name: "a", done: 0, total: 2)])
        let second = LiveSnapshot(title: "t", rows: [LiveRow(name: "a", done: 1, total: 2)], footer: ["f"])
        renderer.update(first)
        renderer.update(first)
        renderer.update(second)
        renderer.finish(second)
        #expect(captured.output == "t\na  [----]  0/2\n" + "\u{1B}[2A\r\u{1B}[Jt\na  [##--]  1/2\nf\n")
    }

    @Test("Terminal mode cuts lines one short of the width so nothing wraps")
    func terminalWidth() {
        let captured = CapturedConsole(isTerminal: true, columns: 10)
        var renderer = LiveRenderer(console: captured.console, barWidth: 4)
        #expect(renderer.mode == .terminal(columns: 10))
        renderer.update(LiveSnapshot(title: "a long title line", rows: [LiveRow(name: "abc", done: 1, total: 1)]))
        #expect(captured.output == "a long ti\nabc  [###\n")
    }

    @Test("The mode follows the console unless given")
    func modeChoice() {
        #expect(LiveRenderer(console: CapturedConsole(isTerminal: false).console).mode == .plain)
        #expect(LiveRenderer(console: CapturedConsole(isTerminal: true).console).mode == .terminal(columns: nil))
    }
}
