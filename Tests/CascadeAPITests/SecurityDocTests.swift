import Foundation
import Testing

/// Protocols/security.md and tls.md name a test for every claim, as `Suite › test`. A renamed or
/// removed test would leave a claim without proof, so every name they cite must exist under Tests/.
@Suite("security.md cites tests that exist")
struct SecurityDocTests {
    /// Display names of every `@Suite("…")` and `@Test("…")` under Tests/.
    static func titles() throws -> (suites: [String], tests: [String]) {
        let tests = ServiceVectors.root.appendingPathComponent("Tests")
        var suites: [String] = [], names: [String] = []
        let pattern = try NSRegularExpression(pattern: #"@(Suite|Test)\("((?:[^"\\]|\\.)*)""#)
        let files = FileManager.default.enumerator(atPath: tests.path)?.compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") } ?? []
        for file in files {
            let text = try String(contentsOf: tests.appendingPathComponent(file), encoding: .utf8)
            for match in pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                guard let kind = Range(match.range(at: 1), in: text), let title = Range(match.range(at: 2), in: text) else { continue }
                let unescaped = text[title].replacingOccurrences(of: #"\""#, with: "\"")
                if text[kind] == "Suite" { suites.append(unescaped) } else { names.append(unescaped) }
            }
        }
        return (suites, names)
    }

    /// The parts of a cited name between ellipses: each must appear in the test's title.
    static func fragments(_ text: String) -> [String] {
        text.components(separatedBy: "…").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    @Test("every `Suite › test` in Protocols/security.md and tls.md names an existing suite and test",
          arguments: [("security.md", 40), ("tls.md", 20)])
    func citedTestsExist(_ name: String, _ least: Int) throws {
        let document = try String(contentsOf: ServiceVectors.root.appendingPathComponent("Protocols/\(name)"), encoding: .utf8)
        let (suites, tests) = try Self.titles()
        #expect(suites.count > 50 && tests.count > 300, "the scan found \(suites.count) suites and \(tests.count) tests")
        let spans = document.components(separatedBy: "`").enumerated().filter { $0.offset % 2 == 1 }.map(\.element)
        var cited = 0
        for span in spans where (span.contains(" › ") || span.hasPrefix("… ")) && span != "Suite › test" {
            let parts = span.components(separatedBy: " › ")
            if parts.count == 2 {
                let suite = parts[0].trimmingCharacters(in: .whitespaces)
                #expect(suites.contains { $0.hasPrefix(suite) }, "\(name) cites a suite that does not exist: \(suite)")
            }
            guard let test = parts.last, parts.count == 2 || span.hasPrefix("… ") else { continue }
            let needed = Self.fragments(test)
            #expect(!needed.isEmpty && tests.contains { title in needed.allSatisfy { title.contains($0) } },
                    "\(name) cites a test that does not exist: \(span)")
            cited += 1
        }
        #expect(cited >= least, "only \(cited) citations were found in \(name): is the notation still `Suite › test`?")
    }
}
