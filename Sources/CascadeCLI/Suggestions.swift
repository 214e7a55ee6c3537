/// "Did you mean X?" for mistyped options, commands and config keys.
enum Suggestions {
    /// The closest candidate to `word`, if one is close enough to be a plausible typo.
    static func closest(to word: String, among candidates: [String]) -> String? {
        let limit = word.count <= 3 ? 1 : 2
        var best: (candidate: String, distance: Int)?
        for candidate in candidates {
            let distance = editDistance(word, candidate)
            if distance <= limit, distance < (best?.distance ?? Int.max) {
                best = (candidate, distance)
            }
        }
        if let best { return best.candidate }
        // A unique prefix ("--max" for "--max-parallel") also counts as a near miss.
        let extended = candidates.filter { word.count >= 3 && $0.hasPrefix(word) }
        return extended.count == 1 ? extended[0] : nil
    }

    /// `; did you mean 'X'?` or empty, for appending to a message.
    static func hint(for word: String, among candidates: [String], prefix: String = "") -> String {
        guard let match = closest(to: word, among: candidates) else { return "" }
        return "; did you mean '\(prefix)\(match)'?"
    }

    /// Edit distance counting insertions, deletions, substitutions and adjacent transpositions as one.
    static func editDistance(_ lhs: String, _ rhs: String) -> Int {
        let a = Array(lhs), b = Array(rhs)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var table = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { table[i][0] = i }
        for j in 0...b.count { table[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                var value = min(table[i - 1][j] + 1, table[i][j - 1] + 1, table[i - 1][j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    value = min(value, table[i - 2][j - 2] + 1)
                }
                table[i][j] = value
            }
        }
        return table[a.count][b.count]
    }
}
