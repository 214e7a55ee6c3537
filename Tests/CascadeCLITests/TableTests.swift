import CascadeCLI
import Testing

@Suite("Tables")
struct TableTests {
    @Test("Columns align under their headers; numbers may hug the right; no trailing spaces")
    func alignment() {
        var table = Table(columns: ["AGENT", "CLUSTER", .right("BYTES"), "STATE"])
        table.append(["a-1", "10.0.1.0/24", "6.2 MiB", "healthy"])
        table.append(["agent-12", "10.0.2.0/24", "512 B", ""])
        table.append(["b", "fd00::/64", "1.0 GiB", "downloading"])
        #expect(table.rendered() == """
        AGENT     CLUSTER        BYTES  STATE
        a-1       10.0.1.0/24  6.2 MiB  healthy
        agent-12  10.0.2.0/24    512 B
        b         fd00::/64    1.0 GiB  downloading

        """)
    }

    @Test("An empty table is its header; the gap is adjustable")
    func emptyAndGap() {
        var table = Table(columns: [.left("A"), .right("NUMBER")])
        #expect(table.rendered() == "A  NUMBER\n")
        table.gap = 1
        table.append(["long name", "7"])
        #expect(table.lines == ["A         NUMBER", "long name      7"])
    }

    @Test("Width counts characters, not bytes")
    func unicode() {
        var table = Table(columns: ["NAME", "X"])
        table.append(["é·✓", "1"])
        #expect(table.lines == ["NAME  X", "é·✓   1"])
    }
}
