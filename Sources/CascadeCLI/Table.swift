/// Aligned text columns under a header row, for the human form of read commands.
///
/// Cells are padded by character count; two spaces separate columns; trailing spaces are trimmed,
/// so the output is stable for tests and diffs.
public struct Table: Sendable {
    /// Which side of its column a cell hugs.
    public enum Alignment: Sendable { case left, right }

    /// A column: its header and alignment; a string literal is a left-aligned column.
    public struct Column: Sendable, ExpressibleByStringLiteral {
        /// The header text.
        public var header: String
        /// Left for text, right for numbers.
        public var alignment: Alignment

        /// A column with an explicit alignment.
        public init(_ header: String, alignment: Alignment = .left) {
            self.header = header
            self.alignment = alignment
        }

        public init(stringLiteral header: String) { self.init(header) }

        /// A left-aligned column.
        public static func left(_ header: String) -> Column { Column(header, alignment: .left) }
        /// A right-aligned column (numbers, sizes).
        public static func right(_ header: String) -> Column { Column(header, alignment: .right) }
    }

    /// The columns, in order.
    public let columns: [Column]
    /// The rows added so far.
    public private(set) var rows: [[String]] = []
    /// Spaces between columns.
    public var gap: Int = 2

    /// A table with these columns: `Table(columns: ["AGENT", "CLUSTER", .right("BYTES")])`.
    public init(columns: [Column]) {
        self.columns = columns
    }

    /// Adds a row; it must have one cell per column.
    public mutating func append(_ cells: [String]) {
        precondition(cells.count == columns.count, "a row has \(cells.count) cells for \(columns.count) columns")
        rows.append(cells)
    }

    /// The header and rows as lines, without newlines.
    public var lines: [String] {
        let all = [columns.map(\.header)] + rows
        let widths = columns.indices.map { index in all.map { $0[index].count }.max() ?? 0 }
        let separator = String(repeating: " ", count: gap)
        return all.map { cells in
            columns.indices.map { index in
                columns[index].alignment == .right
                    ? cells[index].leftPadding(to: widths[index])
                    : cells[index].padding(to: widths[index])
            }.joined(separator: separator).trimmingTrailingSpaces
        }
    }

    /// The table as text, each line ending in a newline.
    public func rendered() -> String {
        lines.map { $0 + "\n" }.joined()
    }
}
