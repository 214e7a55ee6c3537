@testable import CascadeAPI
import CascadeRPC
import Foundation
import Testing

/// The repository's own text: Protocols/, README.md and the Swift sources, read from disk like
/// the vectors, so the names services.md uses can be checked against what the code does.
enum RepositoryText {
    static func file(_ path: String) throws -> String {
        try String(contentsOf: ServiceVectors.root.appendingPathComponent(path), encoding: .utf8)
    }

    /// Every Swift file under Sources/, by path relative to the repository.
    static let sources: [(path: String, text: String)] = {
        let root = ServiceVectors.root.appendingPathComponent("Sources")
        let files = FileManager.default.enumerator(atPath: root.path)?.compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") } ?? []
        return files.sorted().compactMap { path in
            (try? String(contentsOf: root.appendingPathComponent(path), encoding: .utf8)).map { ("Sources/\(path)", $0) }
        }
    }()

    static func matches(_ pattern: String, in text: String, group: Int = 1) -> [String] {
        guard let regex = try? NSRegularExpression(pattern: pattern) else { return [] }
        return regex.matches(in: text, range: NSRange(text.startIndex..., in: text)).compactMap { match in
            Range(match.range(at: group), in: text).map { String(text[$0]) }
        }
    }

    /// The body of section `heading` ("### 3.9 ") up to the next heading of the same or a higher level.
    static func section(_ heading: String, of text: String) -> String {
        guard let start = text.range(of: "\n" + heading) else { return "" }
        let rest = text[start.upperBound...]
        let level = heading.prefix { $0 == "#" }.count
        let end = rest.range(of: #"\n#{1,\#(level)} "#, options: .regularExpression)?.lowerBound ?? rest.endIndex
        return String(rest[..<end])
    }
}

/// What the code does, read from its sources: the event kinds it records, the methods it
/// serves and the statuses it answers with.
enum CodeCatalog {
    /// `EventKind` constants: Swift name → kind ("leaderChanged" → "cluster.leader-changed").
    static var eventKindConstants: [String: String] {
        let text = RepositoryText.sources.first { $0.path.hasSuffix("CascadeStore/EventRecords.swift") }?.text ?? ""
        var constants: [String: String] = [:]
        let names = RepositoryText.matches(#"static let (\w+): EventKind = "([^"]+)""#, in: text)
        let kinds = RepositoryText.matches(#"static let (\w+): EventKind = "([^"]+)""#, in: text, group: 2)
        for (name, kind) in zip(names, kinds) { constants[name] = kind }
        return constants
    }

    /// The kind of every `appendEvent(` call in Sources/, and the calls whose kind is not a
    /// literal or a constant (which this check could not see, so they fail it).
    static var emittedEventKinds: (kinds: Set<String>, unreadable: [String]) {
        let constants = eventKindConstants
        var kinds: Set<String> = [], unreadable: [String] = []
        for (path, text) in RepositoryText.sources {
            var rest = text[...]
            while let call = rest.range(of: "appendEvent(") {
                let head = String(rest[call.upperBound...].prefix(600))
                rest = rest[call.upperBound...]
                if text[..<call.lowerBound].hasSuffix("func ") { continue }
                let literal = RepositoryText.matches(#"^[\s\S]{0,300}?\bkind: "([^"]+)""#, in: head).first
                let constant = RepositoryText.matches(#"^[\s\S]{0,300}?\bkind: \.(\w+)"#, in: head).first.flatMap { constants[$0] }
                if let kind = literal ?? constant {
                    kinds.insert(kind)
                } else {
                    unreadable.append("\(path): appendEvent(\(head.prefix(80))…")
                }
            }
        }
        return (kinds, unreadable)
    }

    /// Method descriptors by Swift path ("CoordinatorService.register" → "cascade.Coordinator/Register").
    static var methodConstants: [String: String] {
        let text = RepositoryText.sources.first { $0.path.hasSuffix("CascadeAPI/Methods.swift") }?.text ?? ""
        var result: [String: String] = [:]
        var service = "", constant: String?
        for line in text.split(separator: "\n").map(String.init) {
            if let name = RepositoryText.matches(#"public enum (\w+Service) \{"#, in: line).first { service = name }
            if let name = RepositoryText.matches(#"static let (\w+) = RPCMethod"#, in: line).first { constant = "\(service).\(name)" }
            // The wire name follows its constant, on the same line or the next.
            if let name = RepositoryText.matches(#""(cascade\.[^"]+)""#, in: line).first, let pending = constant {
                result[pending] = name
                constant = nil
            }
        }
        return result
    }

    /// The methods some router in Sources/ serves (a handler is registered for them).
    static var servedMethods: Set<String> {
        let constants = methodConstants
        var served: Set<String> = []
        for (_, text) in RepositoryText.sources {
            for path in RepositoryText.matches(#"router\.\w+\(\s*(\w+Service\.\w+)"#, in: text) {
                if let name = constants[path] { served.insert(name) }
            }
        }
        return served
    }

    /// True when some source answers with `status` ("INVALID_ARGUMENT"): RPCError(.invalidArgument…
    /// or trailers with `code: .invalidArgument` (OK is the trailers' default, `code: RPCCode = .ok`).
    static func answers(_ status: String) -> Bool {
        let words = status.lowercased().split(separator: "_")
        let swiftName = String(words[0]) + words.dropFirst().map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
        let pattern = #"(RPCError\(\s*|code:\s*(RPCCode\s*=\s*)?)\.`?"# + swiftName + #"`?\b"#
        return RepositoryText.sources.contains { !RepositoryText.matches("(" + pattern + ")", in: $0.text).isEmpty }
    }
}

@Suite("services.md names only what the code does")
struct SpecCatalogTests {
    static let services = (try? RepositoryText.file("Protocols/services.md")) ?? ""

    /// The kinds §3.9 lists, in its table.
    static var listedEventKinds: [String] {
        RepositoryText.matches(#"(?m)^\| `([a-z]+\.[a-z]+(?:-[a-z]+)*)` \|"#, in: RepositoryText.section("### 3.9 ", of: services))
    }

    @Test("§3.9 lists exactly the event kinds the code records, each once")
    func eventKinds() {
        let listed = Self.listedEventKinds
        #expect(listed.count >= 15, "§3.9 lists \(listed.count) kinds: is its table still there?")
        #expect(Set(listed).count == listed.count, "a kind is listed twice")
        let (emitted, unreadable) = CodeCatalog.emittedEventKinds
        #expect(unreadable.isEmpty, "appendEvent calls whose kind is neither a literal nor an EventKind constant: \(unreadable)")
        #expect(emitted.count >= 15, "only \(emitted.count) kinds found in Sources/: is appendEvent still the way events are recorded?")
        for kind in emitted.subtracting(listed).sorted() {
            Issue.record("the code records the event kind \(kind), which services.md §3.9 does not list")
        }
        for kind in Set(listed).subtracting(emitted).sorted() {
            Issue.record("services.md §3.9 lists the event kind \(kind), which the code never records")
        }
    }

    @Test("every event kind services.md names anywhere is one of §3.9")
    func eventKindMentions() {
        let listed = Set(Self.listedEventKinds)
        let mentioned = Set(RepositoryText.matches(#"`([a-z]+\.[a-z]+(?:-[a-z]+)*)`"#, in: Self.services))
            .filter { !$0.hasSuffix(".md") && !$0.hasSuffix(".txt") && !$0.hasSuffix(".conf") }
        for kind in mentioned.subtracting(listed).sorted() {
            Issue.record("services.md names `\(kind)`, which is not an event kind the code records (§3.9)")
        }
    }

    @Test("every method services.md names is served by the code, and every served method is in the §3.0 table")
    func methods() {
        let served = CodeCatalog.servedMethods
        #expect(served.count == CascadeServices.methods.count, "routers serve \(served.count) methods: \(served.sorted())")
        let table = Set(ServicesSpec.methodRows.map { $0[0] })
        #expect(table == served, "only in the table: \(table.subtracting(served).sorted()); only served: \(served.subtracting(table).sorted())")
        let mentioned = Set(RepositoryText.matches(#"(cascade\.[A-Z][A-Za-z]*/[A-Z][A-Za-z]*)"#, in: Self.services))
        for name in mentioned.subtracting(served).sorted() {
            Issue.record("services.md names the method \(name), which no router serves")
        }
        // A bare method name (**Register**, `UpgradeLeader`) must be a served method's, or name a
        // message (§6) or an enum (§2.5).
        let bare = Set(served.compactMap { $0.split(separator: "/").last.map(String.init) })
        let known = bare.union(ServicesSpec.messages.keys).union(ServicesSpec.enumRows.keys)
        let named = RepositoryText.matches(#"`([A-Z][A-Za-z]+)`"#, in: Self.services)
            + RepositoryText.matches(#"\*\*([A-Z][a-z]+(?:[A-Z][a-z]+)+)\.?\*\*"#, in: Self.services)
            + RepositoryText.matches(#"\*\*(Register|Join|Session)\.?\*\*"#, in: Self.services)
        for name in Set(named).subtracting(known).sorted() {
            Issue.record("services.md names \(name), which is neither a served method nor a message or enum of §6 and §2.5")
        }
    }

    /// Statuses services.md names that the code does not answer with yet, each with the issue
    /// that fixes it. The check below fails once one is answered, so the entry is removed then.
    static let statusesPendingFix: [String: String] = [:]

    @Test("every status services.md names is one the code answers with")
    func statuses() {
        let names = (0...16).map { RPCCode(rawValue: $0).description }
        let mentioned = Set(RepositoryText.matches(#"\b([A-Z]+(?:_[A-Z]+)*)\b"#, in: Self.services)).filter(names.contains)
        #expect(mentioned.count >= 10, "services.md names only \(mentioned.sorted())")
        for status in mentioned.sorted() {
            let answered = CodeCatalog.answers(status)
            if let pending = Self.statusesPendingFix[status] {
                #expect(!answered, "\(status) is answered now: remove it from statusesPendingFix (\(pending))")
            } else {
                #expect(answered, "services.md names the status \(status), which no source answers with")
            }
        }
    }

    @Test("the health timeout defaults to 120 s in the code, services.md, README and cascadectl's help")
    func healthTimeout() throws {
        #expect(RolloutPolicy.defaultHealthTimeoutSeconds == 120)
        #expect(RolloutPolicy().effectiveHealthTimeoutSeconds == 120)
        let agentConfig = RepositoryText.sources.first { $0.path.hasSuffix("CascadeInstall/AgentConfig.swift") }?.text ?? ""
        #expect(RepositoryText.matches(#"healthDeadline: Duration = \.seconds\((\d+)\)"#, in: agentConfig) == ["120"])
        let policyRow = Self.services.split(separator: "\n").first { $0.hasPrefix("| `health_timeout_seconds` |") }
        #expect(policyRow.map { ServicesSpec.cells($0).last } == "120")
        #expect(Self.services.contains("| 4 | health_timeout_seconds | uint32 | 0 means 120 |"))
        // Every "health timeout/deadline … N s" in the README and the CLIs' help says 120.
        var texts = [try RepositoryText.file("README.md")]
        texts += RepositoryText.sources.filter { $0.path.contains("CascadeCtl/") || $0.path.contains("CascadeAgent/") }.map(\.text)
        // (Not a range in an error message: "expected 1s to 24h".)
        let pattern = #"(?i)health[- _]?(?:timeout|deadline)[^|.\n]{0,80}?(?<!expected )\b(\d+) ?s\b"#
        let defaults = texts.flatMap { RepositoryText.matches(pattern, in: $0) }
        #expect(defaults.count >= 3, "found \(defaults)")
        #expect(defaults.allSatisfy { $0 == "120" }, "\(defaults)")
    }

    @Test("README names the database file the store opens, and no other")
    func databaseFile() throws {
        let store = RepositoryText.sources.first { $0.path.hasSuffix("CascadeStore/CoordinatorStore.swift") }?.text ?? ""
        let name = try #require(RepositoryText.matches(#"databaseFileName = "([^"]+)""#, in: store).first)
        let readme = try RepositoryText.file("README.md")
        #expect(readme.contains("DIR/\(name)"))
        let others = Set(RepositoryText.matches(#"\b([A-Za-z0-9_-]+\.(?:db|sqlite3?))\b"#, in: readme)).subtracting([name])
        #expect(others.isEmpty, "README names other database files: \(others.sorted())")
        let command = RepositoryText.sources.first { $0.path.hasSuffix("CascadeCoordinator/CoordinatorCommand.swift") }?.text ?? ""
        #expect(command.contains("CoordinatorStore.databaseFileName") && !command.contains("cascade.db"))
    }
}
