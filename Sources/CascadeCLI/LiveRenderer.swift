/// Draws successive snapshots: redrawn in place on a terminal, changed lines only otherwise.
///
/// On a terminal each frame moves the cursor up over the previous frame (`ESC[nA`), returns to
/// column 0 and clears to the end of the screen (`ESC[J`) before writing; lines are cut to the
/// terminal width so wrapping never breaks the line count. In plain mode (a pipe or a log file)
/// the title is printed when it changes and a row when its progress (done/total or state counts)
/// changes, so logs stay short; `finish` prints every line that still differs.
public struct LiveRenderer: Sendable {
    /// How frames are drawn.
    public enum Mode: Sendable, Equatable {
        /// Redraw in place; cut lines to `columns` when known.
        case terminal(columns: Int?)
        /// Append lines, only what changed.
        case plain
    }

    /// The drawing mode.
    public let mode: Mode
    /// Width of the progress bars in cells.
    public let barWidth: Int
    private let write: @Sendable (String) -> Void
    private var drawnLineCount = 0
    private var lastFrame: [String] = []
    private var printedKeys: [String: String] = [:]
    private var printedText: [String: String] = [:]

    /// A renderer writing to the console's standard output; the mode follows `console.isTerminal`
    /// unless given (tests pass it explicitly).
    public init(console: Console, mode: Mode? = nil, barWidth: Int = 20) {
        self.mode = mode ?? (console.isTerminal ? .terminal(columns: console.columns) : .plain)
        self.barWidth = barWidth
        self.write = console.writeOut
    }

    /// Shows `snapshot`; writes nothing if nothing visible changed.
    public mutating func update(_ snapshot: LiveSnapshot) {
        draw(snapshot, final: false)
    }

    /// Shows the last snapshot; in plain mode every line that differs from what was printed.
    public mutating func finish(_ snapshot: LiveSnapshot) {
        draw(snapshot, final: true)
    }

    private mutating func draw(_ snapshot: LiveSnapshot, final: Bool) {
        let lines = LiveLayout.lines(for: snapshot, barWidth: barWidth).map(HumanFormat.printable)
        switch mode {
        case .terminal(let columns):
            let frame = columns.map { width in lines.map { String($0.prefix(max(1, width - 1))) } } ?? lines
            guard frame != lastFrame else { return }
            var output = drawnLineCount > 0 ? "\u{1B}[\(drawnLineCount)A\r\u{1B}[J" : ""
            output += frame.map { $0 + "\n" }.joined()
            write(output)
            drawnLineCount = frame.count
            lastFrame = frame
        case .plain:
            // Line identities: the title, each row by name, footer lines by position.
            var keyed: [(id: String, key: String, text: String)] = [("title", snapshot.title, lines[0])]
            for (index, row) in snapshot.rows.enumerated() {
                keyed.append(("row:" + row.name, LiveLayout.progressKey(row), lines[1 + index]))
            }
            for (index, line) in snapshot.footer.enumerated() {
                keyed.append(("footer:\(index)", line, line))
            }
            var output = ""
            for line in keyed {
                let changed = final ? printedText[line.id] != line.text : printedKeys[line.id] != line.key
                guard changed else { continue }
                output += line.text + "\n"
                printedKeys[line.id] = line.key
                printedText[line.id] = line.text
            }
            if !output.isEmpty { write(output) }
        }
    }
}
