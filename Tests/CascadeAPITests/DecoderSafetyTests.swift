@testable import CascadeAPI
import CascadeWire
import Testing

/// Deterministic RNG so every randomized test reproduces from its seed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("Decoders on hostile input")
struct DecoderSafetyTests {
    /// Offsets at which a top-level field starts: cutting there leaves a shorter valid message.
    func fieldBoundaries(_ bytes: [UInt8]) throws -> Set<Int> {
        var reader = MessageReader(bytes)
        var offsets: Set<Int> = [0]
        while try reader.next() != nil { offsets.insert(reader.offset) }
        return offsets
    }

    @Test("every message cut inside a field is rejected as truncated", arguments: Samples.all)
    func truncation(_ sample: Sample) throws {
        let boundaries = try fieldBoundaries(sample.encoded)
        for cut in 0..<sample.encoded.count where !boundaries.contains(cut) {
            let error = captureError(WireError.self) { try sample.decode(Array(sample.encoded[..<cut])) }
            #expect(error?.kind == .truncated, "\(sample.name) cut at \(cut) of \(sample.encoded.count)")
        }
    }

    @Test("random bytes and mutated messages decode or fail with a WireError, never crash", arguments: Samples.all)
    func fuzz(_ sample: Sample) {
        var rng = SplitMix64(state: UInt64(sample.name.utf8.count) &* 7919)
        for round in 0..<300 {
            var bytes: [UInt8]
            if round % 2 == 0 || sample.encoded.isEmpty {
                bytes = (0..<Int.random(in: 0...64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            } else {
                bytes = sample.encoded
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    bytes[Int.random(in: 0..<bytes.count, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
                }
            }
            do {
                try sample.decode(bytes)
            } catch is WireError {
                continue
            } catch {
                Issue.record("\(sample.name) threw \(error), not a WireError")
            }
        }
    }

    @Test("a repeated field beyond 100000 elements is refused before it grows further")
    func repeatedLimit() throws {
        var writer = MessageWriter()
        for _ in 0..<APILimits.maxRepeatedElements { writer.writeString(field: 9, "") }
        #expect(try Assignment(serializedBytes: writer.bytes).memberIDs.count == 100_000)
        writer.writeString(field: 9, "")
        let error = captureError(WireError.self) { _ = try Assignment(serializedBytes: writer.bytes) }
        #expect(error?.kind == .valueOutOfRange)
        #expect(error?.message == "repeated field 9 has more than 100000 elements")
    }

    @Test("a manifest with more than 65536 chunk hashes is refused at decoding")
    func chunkLimit() throws {
        func manifest(chunks: Int) -> [UInt8] {
            var writer = MessageWriter()
            writer.writeBytes(field: 5, [UInt8](repeating: 0, count: chunks * 32))
            writer.writeBytes(field: 6, [UInt8](repeating: 0, count: 32))
            return writer.bytes
        }
        #expect(try Manifest(serializedBytes: manifest(chunks: 65_536)).chunkCount == 65_536)
        let error = captureError(WireError.self) { _ = try Manifest(serializedBytes: manifest(chunks: 65_537)) }
        #expect(error?.kind == .valueOutOfRange)
        #expect(error?.message == "manifest lists 65537 chunks, more than the limit of 65536")
    }

    @Test("digest fields must be exactly 32 bytes")
    func digests() {
        var writer = MessageWriter()
        writer.writeBytes(field: 2, [UInt8](repeating: 1, count: 31))
        let error = captureError(WireError.self) { _ = try FetchChunksRequest(serializedBytes: writer.bytes) }
        #expect(error?.message == "field 2 must hold a 32-byte SHA-256 digest, not 31 bytes")
    }
}
