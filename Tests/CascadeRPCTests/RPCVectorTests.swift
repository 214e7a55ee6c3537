@testable import CascadeRPC
import CascadeWire
import Foundation
import Testing

/// Protocols/vectors/rpc.txt, parsed: `kind | column | column | ...`.
enum RPCVectors {
    static let lines: [[String]] = {
        let url = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Protocols/vectors/rpc.txt")
        let text = (try? String(contentsOf: url, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { line in
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard !trimmed.isEmpty, !trimmed.hasPrefix("#") else { return nil }
            return trimmed.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        }
    }()

    static func rows(_ kind: String) -> [[String]] { lines.filter { $0.first == kind } }

    static func bytes(_ hex: String) -> [UInt8] {
        if hex == "-" { return [] }
        let digits = Array(hex.filter { !$0.isWhitespace })
        return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0...$0 + 1]), radix: 16)! }
    }

    static func decodeAndEncode(schema: String, _ bytes: [UInt8]) throws -> [UInt8] {
        switch schema {
        case "CallHead":
            let head = try CallHead(serializedBytes: bytes)
            try head.validate()
            return head.serializedBytes()
        case "ResponseHead": return try ResponseHead(serializedBytes: bytes).serializedBytes()
        case "Trailers": return try CallTrailers(serializedBytes: bytes).serializedBytes()
        default: throw RPCError(.internal, "unknown schema \(schema)")
        }
    }
}

@Suite("RPC vectors (Protocols/vectors/rpc.txt)")
struct RPCVectorTests {
    @Test("the vector file has every section")
    func sections() {
        for kind in ["block", "lenient-block", "bad-block", "messages", "bad-messages", "frame"] {
            #expect(!RPCVectors.rows(kind).isEmpty, "no \(kind) lines")
        }
    }

    @Test("call heads, response heads and trailers decode and re-encode byte for byte")
    func blocks() throws {
        for row in RPCVectors.rows("block") {
            let bytes = RPCVectors.bytes(row[3])
            #expect(try RPCVectors.decodeAndEncode(schema: row[2], bytes) == bytes, "\(row[1])")
        }
        let echo = try CallHead(serializedBytes: RPCVectors.bytes(RPCVectors.rows("block").first { $0[1] == "call-head-echo" }![3]))
        #expect(echo == CallHead(method: "cascade.Test/Echo", timeoutMicroseconds: 5_000_000, metadata: [MetadataEntry("request-id", "42")]))
    }

    @Test("lenient blocks decode and re-encode to their canonical form")
    func lenientBlocks() throws {
        for row in RPCVectors.rows("lenient-block") {
            #expect(try RPCVectors.decodeAndEncode(schema: row[2], RPCVectors.bytes(row[3])) == RPCVectors.bytes(row[5]), "\(row[1])")
        }
    }

    @Test("bad blocks are refused with the stated status")
    func badBlocks() {
        for row in RPCVectors.rows("bad-block") {
            let status = row[4]
            do {
                _ = try RPCVectors.decodeAndEncode(schema: row[2], RPCVectors.bytes(row[3]))
                // Well-formed: only an unknown method may get here (the router answers UNIMPLEMENTED).
                #expect(status == "UNIMPLEMENTED", "\(row[1]) decoded but should be \(status)")
            } catch {
                #expect(status == "INTERNAL", "\(row[1]) failed with \(error), expected \(status)")
            }
        }
    }

    @Test("message streams deframe into the stated messages; bad ones fail with the stated status")
    func messages() throws {
        for row in RPCVectors.rows("messages") {
            var deframer = MessageDeframer(maxMessageSize: Settings.defaults.maxMessageSize)
            let got = try deframer.feed(RPCVectors.bytes(row[2])[...])
            let expected = row[3] == "-" ? [] : row[3].split(separator: " ").map { RPCVectors.bytes(String($0.dropFirst().dropLast())) }
            #expect(got.map { Array($0) } == expected, "\(row[1])")
            #expect(deframer.isIdle)
        }
        for row in RPCVectors.rows("bad-messages") {
            var deframer = MessageDeframer(maxMessageSize: Settings.defaults.maxMessageSize)
            do {
                _ = try deframer.feed(RPCVectors.bytes(row[2])[...])
                #expect(row[3] == "INTERNAL" && !deframer.isIdle, "\(row[1]) should fail \(row[3])")
            } catch {
                #expect(error.code.description == row[3], "\(row[1])")
            }
        }
    }

    @Test("each direction of the recorded connection decodes frame by frame and re-encodes byte for byte")
    func conversation() throws {
        for direction in ["c>s", "s>c"] {
            let rows = RPCVectors.rows("frame").filter { $0[2] == direction }.sorted { Int($0[3])! < Int($1[3])! }
            let stream = rows.flatMap { RPCVectors.bytes($0[4]) }
            var decoder = FrameDecoder(maxFrameSize: 16384, expectPreface: true)
            decoder.feed(stream)
            var reencoded: [UInt8] = []
            var frames = 0
            while let item = try decoder.next() {
                switch item {
                case .preface: Preface.encode(version: .current, into: &reencoded)
                case .frame(let frame):
                    _ = try FramePayload(frame)
                    frame.encode(into: &reencoded)
                    frames += 1
                }
            }
            #expect(reencoded == stream, "\(direction)")
            #expect(frames == rows.count - 1)
        }
    }
}
