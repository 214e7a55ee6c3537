/// What a live view shows at one moment: a title and one progress row per item (cluster).
public struct LiveSnapshot: Sendable, Equatable {
    /// First line (`rollout r-7 of 1.1: running`).
    public var title: String
    /// One row per cluster, in display order.
    public var rows: [LiveRow]
    /// Lines after the rows (totals, hints); may be empty.
    public var footer: [String]

    /// A snapshot.
    public init(title: String, rows: [LiveRow], footer: [String] = []) {
        self.title = title
        self.rows = rows
        self.footer = footer
    }
}

/// One progress row: `10.0.1.0/24  [#####-----]  3/4  healthy 3 · downloading 1  6.2 MiB  ETA 4s`.
public struct LiveRow: Sendable, Equatable {
    /// A state and how many items are in it (`healthy`, 3).
    public struct StateCount: Sendable, Equatable {
        /// The state's name.
        public var state: String
        /// How many are in it; zero counts are not shown.
        public var count: Int

        /// A count.
        public init(_ state: String, _ count: Int) {
            self.state = state
            self.count = count
        }
    }

    /// The item's name (cluster prefix).
    public var name: String
    /// Finished members.
    public var done: Int
    /// All members.
    public var total: Int
    /// Members per state, in display order.
    public var states: [StateCount]
    /// Bytes transferred so far, if known.
    public var bytes: Int64?
    /// Estimated time left; shown only while unfinished.
    public var eta: Duration?

    /// A row.
    public init(name: String, done: Int, total: Int, states: [StateCount] = [], bytes: Int64? = nil, eta: Duration? = nil) {
        self.name = name
        self.done = done
        self.total = total
        self.states = states
        self.bytes = bytes
        self.eta = eta
    }
}

/// Turns snapshots into aligned text lines; pure, so tests compare exact strings.
public enum LiveLayout {
    /// The snapshot's lines (no newlines): the title, one aligned line per row, then the footer.
    public static func lines(for snapshot: LiveSnapshot, barWidth: Int = 20) -> [String] {
        let cells = snapshot.rows.map { row -> [String] in
            let states = row.states.filter { $0.count > 0 }.map { "\($0.state) \($0.count)" }.joined(separator: " · ")
            let eta = row.eta.map { row.done < row.total ? "ETA " + HumanFormat.duration($0) : "" } ?? ""
            return [row.name, bar(done: row.done, total: row.total, width: barWidth), "\(row.done)/\(row.total)",
                    states, row.bytes.map(HumanFormat.bytes) ?? "", eta]
        }
        // Columns empty in every row (no bytes known, no ETA yet) are dropped, not left as gaps.
        let alignments: [Table.Alignment] = [.left, .left, .right, .left, .right, .left]
        let kept = alignments.indices.filter { index in cells.contains { !$0[index].isEmpty } }
        var table = Table(columns: kept.map { Table.Column("", alignment: alignments[$0]) })
        for row in cells { table.append(kept.map { row[$0] }) }
        return [snapshot.title] + table.lines.dropFirst() + snapshot.footer
    }

    /// `[########------]`: the finished fraction of `width` cells, rounded down.
    public static func bar(done: Int, total: Int, width: Int) -> String {
        let filled = total > 0 ? min(width, max(0, done) * width / total) : 0
        return "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "]"
    }

    /// The part of a row that counts as a change in plain mode (not bytes or ETA, which move constantly).
    static func progressKey(_ row: LiveRow) -> String {
        "\(row.done)/\(row.total) " + row.states.map { "\($0.state)=\($0.count)" }.joined(separator: ",")
    }
}
