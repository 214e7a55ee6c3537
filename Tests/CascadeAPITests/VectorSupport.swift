@testable import CascadeAPI
import CascadeCrypto
import CascadeWire
import Foundation
import Testing

/// One non-comment line of Protocols/vectors/services.txt, split on "|".
struct ServiceVector: CustomTestStringConvertible, Sendable {
    let kind: String
    let name: String
    /// Everything after kind and name, explanation last.
    let columns: [String]
    let line: Int

    var testDescription: String { "\(kind) \(name) (line \(line))" }

    func hex(_ index: Int) throws -> [UInt8] {
        let text = columns[index]
        if text == "-" { return [] }
        return try #require(Hex.decode(text), "bad hex in \(testDescription)")
    }
}

enum ServiceVectors {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static let all: [ServiceVector] = {
        let url = root.appendingPathComponent("Protocols/vectors/services.txt")
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { return [] }
        var vectors: [ServiceVector] = []
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let parts = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count >= 3 else { continue }
            vectors.append(ServiceVector(kind: parts[0], name: parts[1], columns: Array(parts[2...]), line: number + 1))
        }
        return vectors
    }()

    static func kind(_ kind: String) -> [ServiceVector] { all.filter { $0.kind == kind } }

    static func named(_ name: String) throws -> ServiceVector {
        try #require(all.first { $0.name == name }, "no vector \(name)")
    }

    /// The hex of an ok/older vector, decoded as its schema.
    static func message<M: WireMessage>(_ name: String, as type: M.Type = M.self) throws -> M {
        let vector = try named(name)
        return try M(serializedBytes: vector.hex(1))
    }

    static func key(_ name: String) throws -> Ed25519PrivateKey {
        let vector = try #require(kind("key").first { $0.name == name }, "no key \(name)")
        return try Ed25519PrivateKey(rawRepresentation: vector.hex(0))
    }
}

/// Decodes as one schema and encodes again: what every ok/older/newer vector is checked with.
struct Schema: Sendable {
    let reencode: @Sendable ([UInt8]) throws -> [UInt8]

    init<M: WireMessage>(_ type: M.Type) {
        reencode = { bytes in try M(serializedBytes: bytes).serializedBytes() }
    }

    static let byName: [String: Schema] = [
        "AgentInfo": Schema(AgentInfo.self), "AgentProgress": Schema(AgentProgress.self),
        "AgentReport": Schema(AgentReport.self), "AgentRow": Schema(AgentRow.self),
        "Assignment": Schema(Assignment.self), "Chunk": Schema(Chunk.self), "ClusterInfo": Schema(ClusterInfo.self),
        "ClusterProgress": Schema(ClusterProgress.self), "ClusterReport": Schema(ClusterReport.self),
        "ClusterRolloutOrder": Schema(ClusterRolloutOrder.self), "Event": Schema(Event.self),
        "FaultReport": Schema(FaultReport.self), "FetchChunksRequest": Schema(FetchChunksRequest.self),
        "FetchHint": Schema(FetchHint.self), "GetReleaseRequest": Schema(GetReleaseRequest.self),
        "Heartbeat": Schema(Heartbeat.self), "IdleRatios": Schema(IdleRatios.self), "Instruction": Schema(Instruction.self),
        "ListAgentsRequest": Schema(ListAgentsRequest.self), "ListAgentsResponse": Schema(ListAgentsResponse.self),
        "ListClustersRequest": Schema(ListClustersRequest.self), "ListClustersResponse": Schema(ListClustersResponse.self),
        "ListEventsRequest": Schema(ListEventsRequest.self), "ListEventsResponse": Schema(ListEventsResponse.self),
        "ListReleasesRequest": Schema(ListReleasesRequest.self), "ListReleasesResponse": Schema(ListReleasesResponse.self),
        "ListRolloutsRequest": Schema(ListRolloutsRequest.self), "ListRolloutsResponse": Schema(ListRolloutsResponse.self),
        "Manifest": Schema(Manifest.self), "MemberStatus": Schema(MemberStatus.self),
        "MoveLeaderRequest": Schema(MoveLeaderRequest.self), "PushReleaseRequest": Schema(PushReleaseRequest.self),
        "PushReleaseResponse": Schema(PushReleaseResponse.self), "RegisterRequest": Schema(RegisterRequest.self),
        "ReleaseInfo": Schema(ReleaseInfo.self), "ReleaseQuery": Schema(ReleaseQuery.self),
        "ReleaseStatusResponse": Schema(ReleaseStatusResponse.self), "RolloutControl": Schema(RolloutControl.self),
        "RolloutControlRequest": Schema(RolloutControlRequest.self), "RolloutPolicy": Schema(RolloutPolicy.self),
        "RolloutQuery": Schema(RolloutQuery.self), "RolloutStatus": Schema(RolloutStatus.self),
        "SecondInstructionCue": Schema(SecondInstructionCue.self), "ShowReleaseResponse": Schema(ShowReleaseResponse.self),
        "SignedManifest": Schema(SignedManifest.self), "StartRolloutRequest": Schema(StartRolloutRequest.self),
        "StateCounts": Schema(StateCounts.self), "UpgradeLeaderRequest": Schema(UpgradeLeaderRequest.self),
        "UpgradeLeaderResponse": Schema(UpgradeLeaderResponse.self), "UpgradeOrder": Schema(UpgradeOrder.self),
        "DowngradeAuthorization": Schema(DowngradeAuthorization.self), "SignedDowngrade": Schema(SignedDowngrade.self),
        "RolloutExpectation": Schema(RolloutExpectation.self),
    ]

    static func named(_ name: String) throws -> Schema {
        try #require(byName[name], "no schema \(name)")
    }
}

/// The `fields` notation of encoding.txt, encoded independently of the API types, so a vector's
/// hex is checked against its readable description and not only against the Swift encoder.
enum FieldNotation {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static func encode(_ text: String) throws -> [UInt8] {
        var writer = MessageWriter()
        if text != "-" { try write(Substring(text), into: &writer) }
        return writer.bytes
    }

    private static func write(_ text: Substring, into writer: inout MessageWriter) throws {
        for item in try splitTopLevel(text) {
            guard let colon = item.firstIndex(of: ":"), let equals = item.firstIndex(of: "="),
                  let number = Int(item[..<colon]) else { throw Failure(description: "bad field \(item)") }
            let kind = item[item.index(after: colon)..<equals]
            let value = item[item.index(after: equals)...]
            switch kind {
            case "varint": writer.writeVarint(field: number, try parse(UInt64(value), value))
            case "bool": writer.writeBool(field: number, value == "true")
            case "fixed64": writer.writeFixed64(field: number, try parse(UInt64(value), value))
            case "fixed32": writer.writeFixed32(field: number, try parse(UInt32(value), value))
            case "string":
                guard value.first == "\"", value.last == "\"", value.count >= 2 else { throw Failure(description: "bad string \(value)") }
                writer.writeString(field: number, String(value.dropFirst().dropLast()))
            case "bytes":
                writer.writeBytes(field: number, value == "-" ? [] : try parse(Hex.decode(String(value)), value))
            case "message":
                guard value.first == "{", value.last == "}" else { throw Failure(description: "bad message \(value)") }
                var nested = MessageWriter()
                try write(value.dropFirst().dropLast(), into: &nested)
                writer.writeBytes(field: number, nested.bytes)
            default:
                throw Failure(description: "unknown kind \(kind)")
            }
        }
    }

    private static func parse<T>(_ value: T?, _ text: Substring) throws -> T {
        guard let value else { throw Failure(description: "bad value \(text)") }
        return value
    }

    /// Splits on ";" outside braces and quotes.
    private static func splitTopLevel(_ text: Substring) throws -> [Substring] {
        var items: [Substring] = []
        var depth = 0, quoted = false
        var start = text.startIndex
        for index in text.indices {
            switch text[index] {
            case "\"": quoted.toggle()
            case "{" where !quoted: depth += 1
            case "}" where !quoted: depth -= 1
            case ";" where !quoted && depth == 0:
                items.append(text[start..<index])
                start = text.index(after: index)
            default: break
            }
        }
        guard depth == 0, !quoted else { throw Failure(description: "unbalanced \(text)") }
        if start < text.endIndex { items.append(text[start...]) }
        return items
    }
}

/// Captures the typed error of a throwing closure (closures infer untyped throws).
func captureError<E: Error>(_ type: E.Type, _ body: () throws -> Void) -> E? {
    do {
        try body()
        Issue.record("expected a \(E.self), nothing was thrown")
        return nil
    } catch let error as E {
        return error
    } catch {
        Issue.record("expected a \(E.self), got \(error)")
        return nil
    }
}
