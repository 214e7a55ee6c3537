@testable import CascadeAPI
import CascadeNet
import CascadeWire
import Foundation
import Testing

/// Protocols/services.md, read as data: its method table (§3.0), enum table (§2.5) and message
/// tables (§6), so the normative text and the Swift types cannot drift apart.
enum ServicesSpec {
    static let text: String = {
        let url = ServiceVectors.root.appendingPathComponent("Protocols/services.md")
        return (try? String(contentsOf: url, encoding: .utf8)) ?? ""
    }()

    static func cells(_ line: Substring) -> [String] {
        line.split(separator: "|", omittingEmptySubsequences: false).dropFirst().dropLast()
            .map { $0.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "`", with: "") }
    }

    /// Rows of the §3.0 table: name, shape, request, response, roles, idempotent.
    static var methodRows: [[String]] {
        text.split(separator: "\n").filter { $0.hasPrefix("| `cascade.") }.map(cells)
    }

    /// Rows of the §2.5 table: enum name → "0 unspecified, 1 member, …".
    static var enumRows: [String: String] {
        var rows: [String: String] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("| `") && !line.hasPrefix("| `cascade.") {
            let row = cells(line)
            if row.count == 2 { rows[row[0]] = row[1] }
        }
        return rows
    }

    /// §6: message name → field number → type, from "### `Name`" sections.
    static var messages: [String: [Int: String]] {
        guard let start = text.range(of: "\n## 6. Messages"), let end = text.range(of: "\n## 7. ") else { return [:] }
        var result: [String: [Int: String]] = [:]
        var current: String?
        for line in text[start.upperBound..<end.lowerBound].split(separator: "\n") {
            if line.hasPrefix("### `") {
                let name = line.dropFirst(5).prefix { $0 != "`" }
                current = String(name)
                result[String(name)] = [:]
            } else if let current, line.hasPrefix("| "), let number = Int(cells(line)[0]) {
                result[current]?[number] = cells(line)[2]
            }
        }
        return result
    }

    /// The wire type services.md §1 gives each type.
    static func wireType(_ type: String) -> WireType {
        let scalar = type.hasPrefix("repeated ") ? String(type.dropFirst(9)) : type
        switch scalar {
        case "uint32", "uint64", "bool", "ppm": return .varint
        default: return scalar.hasPrefix("enum ") ? .varint : .lengthDelimited
        }
    }
}

@Suite("services.md agrees with the code")
struct SpecConsistencyTests {
    @Test("the method table lists exactly the method descriptors, with their shapes, types, roles and idempotency")
    func methods() throws {
        let rows = ServicesSpec.methodRows
        #expect(rows.count == CascadeServices.methods.count)
        for (row, method) in zip(rows, CascadeServices.methods) {
            #expect(row[0] == method.name)
            #expect(row[1] == method.shape.rawValue, "\(method.name)")
            #expect(row[2] == method.requestType, "\(method.name)")
            #expect(row[3] == method.responseType, "\(method.name)")
            let roles = Set(row[4].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
            #expect(roles == Set(method.allowedRoles.map(\.rawValue)), "\(method.name)")
            #expect(row[5].hasPrefix(method.idempotent ? "yes" : "no"), "\(method.name)")
        }
    }

    @Test("method names follow rpc.md §3.1 and are unique")
    func methodNames() {
        let names = CascadeServices.methods.map(\.name)
        #expect(Set(names).count == names.count)
        for name in names {
            let parts = name.split(separator: "/")
            #expect(parts.count == 2 && parts[0].hasPrefix("cascade.") && name.utf8.count <= 256, "\(name)")
            #expect(name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "/" || $0 == "_") })
        }
        // Operators never reach the agent-facing services, agents never the operator one.
        for method in CascadeServices.methods {
            #expect(method.allowedRoles == (method.name.hasPrefix("cascade.Operator/") ? [.operator] : [.agent]), "\(method.name)")
        }
    }

    @Test("every message of §6 has a Swift type whose encoding uses exactly the listed field numbers and wire types",
          arguments: Samples.all)
    func messageTables(_ sample: Sample) throws {
        let spec = try #require(ServicesSpec.messages[sample.name], "services.md §6 has no table for \(sample.name)")
        var reader = MessageReader(sample.encoded)
        var seen: [Int: WireType] = [:]
        while let field = try reader.next() { seen[field.number] = field.wireType }
        #expect(Set(seen.keys) == Set(spec.keys), "field numbers of \(sample.name)")
        for (number, type) in spec {
            #expect(seen[number] == ServicesSpec.wireType(type), "\(sample.name) field \(number) is \(type)")
        }
    }

    @Test("§6 lists no message without a Swift type and a sample")
    func noExtraMessages() {
        let documented = Set(ServicesSpec.messages.keys)
        #expect(documented == Set(Samples.all.map(\.name)))
        #expect(documented == Set(Schema.byName.keys))
    }

    @Test("the enum table of §2.5 matches the Swift enums")
    func enums() {
        func render<E: WireEnum>(_ type: E.Type, _ count: UInt32) -> String {
            (0..<count).map { value in
                let name = E(wireValue: value).description.replacingOccurrences(of: "-", with: "_")
                return "\(value) \(name)"
            }.joined(separator: ", ")
        }
        let rows = ServicesSpec.enumRows
        #expect(rows["AgentRole"] == render(AgentRole.self, 3))
        #expect(rows["AgentRolloutState"] == render(AgentRolloutState.self, 8))
        #expect(rows["RolloutState"] == render(RolloutState.self, 8))
        #expect(rows["ClusterPhase"] == render(ClusterPhase.self, 7))
        #expect(rows["RolloutAction"] == render(RolloutAction.self, 4))
        #expect(rows["FetchSource"]?.hasPrefix("0 unspecified") == true)
        #expect(rows["FetchSource"]?.hasSuffix("1 leader, 2 coordinator") == true)
    }
}
