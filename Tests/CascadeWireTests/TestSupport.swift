import CascadeWire
import Foundation
import Testing

/// Deterministic RNG so every randomized test reproduces from its seed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

enum Hex {
    /// Parses hex with optional spaces; "-" is empty. Nil on malformed input.
    static func decode(_ text: String) -> [UInt8]? {
        let digits = text.filter { !$0.isWhitespace }
        if digits == "-" { return [] }
        guard digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        var iterator = digits.makeIterator()
        while let high = iterator.next(), let low = iterator.next() {
            guard let byte = UInt8(String([high, low]), radix: 16) else { return nil }
            bytes.append(byte)
        }
        return bytes
    }

    static func encode(_ bytes: some Sequence<UInt8>) -> String {
        let text = bytes.map { byte -> String in
            let digits = String(byte, radix: 16)
            return digits.count == 1 ? "0" + digits : digits
        }.joined()
        return text.isEmpty ? "-" : text
    }
}

/// One non-comment line of a vector file, split on "|".
struct VectorLine: CustomTestStringConvertible, Sendable {
    let kind: String
    let name: String
    let columns: [String]  // everything after kind and name, explanation last
    let line: Int

    var testDescription: String { "\(kind) \(name) (line \(line))" }

    func hex(_ index: Int) throws -> [UInt8] {
        try #require(Hex.decode(columns[index]), "bad hex in \(testDescription)")
    }
}

enum Vectors {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()   // CascadeWireTests
        .deletingLastPathComponent()   // Tests
        .deletingLastPathComponent()   // package root
        .appendingPathComponent("Protocols/vectors")

    static func load(_ file: String) -> [VectorLine] {
        let url = directory.appendingPathComponent(file)
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { return [] }
        var lines: [VectorLine] = []
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = raw.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            let parts = trimmed.split(separator: "|", omittingEmptySubsequences: false)
                .map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count >= 3 else { continue }
            lines.append(VectorLine(kind: parts[0], name: parts[1], columns: Array(parts[2...]), line: number + 1))
        }
        return lines
    }

    static let frames = load("frames.txt")
    static let encoding = load("encoding.txt")

    static func frames(_ kind: String) -> [VectorLine] { frames.filter { $0.kind == kind } }
    static func encoding(_ kind: String) -> [VectorLine] { encoding.filter { $0.kind == kind } }

    /// Every golden frame (frame and lenient lines) as raw bytes.
    static var goldenFrameBytes: [[UInt8]] {
        (frames("frame") + frames("lenient")).compactMap { Hex.decode($0.columns[0]) }
    }
}

/// Captures the typed error of a throwing closure, or nil if it did not throw.
/// (Closure literals infer untyped throws, so the type is checked here; the
/// library's own signatures are `throws(WireError)`.)
func wireError(_ body: () throws -> Void) -> WireError? {
    do {
        try body()
        return nil
    } catch let error as WireError {
        return error
    } catch {
        Issue.record("expected a WireError, got \(error)")
        return nil
    }
}

/// Renders a typed frame in the `decoded` notation of frames.txt.
func describe(_ payload: FramePayload, streamID: UInt32) -> String {
    func code(_ c: ErrorCode) -> String { c.isKnown ? c.name : String(c.rawValue) }
    func bit(_ b: Bool) -> String { b ? "1" : "0" }
    switch payload {
    case .data(let bytes, let end):
        return "DATA stream=\(streamID) end_stream=\(bit(end)) data=\(Hex.encode(bytes))"
    case .headers(let block, let end):
        return "HEADERS stream=\(streamID) end_stream=\(bit(end)) block=\(Hex.encode(block))"
    case .trailers(let block):
        return "TRAILERS stream=\(streamID) block=\(Hex.encode(block))"
    case .reset(let c):
        return "RESET stream=\(streamID) code=\(code(c))"
    case .settings(let ack, let entries):
        let list = entries.map { "\($0.id.rawValue):\($0.value)" }.joined(separator: ",")
        return "SETTINGS ack=\(bit(ack)) entries=\(list.isEmpty ? "-" : list)"
    case .ping(let ack, let data):
        var bytes: [UInt8] = []
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: data >> UInt64(shift))) }
        return "PING ack=\(bit(ack)) data=\(Hex.encode(bytes))"
    case .goaway(let last, let c, let reason):
        return "GOAWAY last=\(last) code=\(code(c)) reason=\"\(reason)\""
    case .windowUpdate(let increment):
        return "WINDOW_UPDATE stream=\(streamID) increment=\(increment)"
    case .unknown(let frame):
        let type = Hex.encode([frame.type.rawValue]), flags = Hex.encode([frame.flags.rawValue])
        return "UNKNOWN type=0x\(type) stream=\(streamID) flags=0x\(flags) length=\(frame.payload.count)"
    }
}

/// Decodes every frame in `bytes` fed in the given chunk sizes (cycled).
func decodeAll(
    _ bytes: [UInt8], chunks: [Int], expectPreface: Bool = false, maxFrameSize: Int = Settings.defaults.maxFrameSize
) throws -> [DecodedItem] {
    var decoder = FrameDecoder(maxFrameSize: maxFrameSize, expectPreface: expectPreface)
    var items: [DecodedItem] = []
    var offset = 0
    var chunkIndex = 0
    while offset < bytes.count {
        let size = min(max(chunks[chunkIndex % chunks.count], 1), bytes.count - offset)
        chunkIndex += 1
        decoder.feed(bytes[offset..<(offset + size)])
        offset += size
        while let item = try decoder.next() { items.append(item) }
    }
    #expect(decoder.bufferedByteCount == 0)
    return items
}
