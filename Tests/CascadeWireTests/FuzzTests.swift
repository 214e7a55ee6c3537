import CascadeWire
import Testing

/// Applies 1–3 seeded mutations: bit flips, byte changes, truncation,
/// insertion, deletion, splicing another sample, or edge bytes in the header.
func mutate(_ input: [UInt8], _ rng: inout SplitMix64, pool: [[UInt8]]) -> [UInt8] {
    var bytes = input
    for _ in 0..<Int.random(in: 1...3, using: &rng) {
        let position = bytes.isEmpty ? 0 : Int(rng.next() % UInt64(bytes.count))
        switch rng.next() % 8 {
        case 0 where !bytes.isEmpty: bytes[position] ^= UInt8(1) << (rng.next() % 8)
        case 1 where !bytes.isEmpty: bytes[position] = UInt8(truncatingIfNeeded: rng.next())
        case 2: bytes = Array(bytes.prefix(Int(rng.next() % UInt64(bytes.count + 1))))
        case 3:
            let insert = (0..<Int.random(in: 1...4, using: &rng)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            bytes.insert(contentsOf: insert, at: position)
        case 4 where !bytes.isEmpty:
            bytes.removeSubrange(position..<min(bytes.count, position + Int.random(in: 1...4, using: &rng)))
        case 5: bytes += pool[Int(rng.next() % UInt64(pool.count))]
        case 6 where bytes.count > 0:
            let edges: [UInt8] = [0x00, 0x01, 0x7F, 0x80, 0xFF]
            bytes[min(position, 9, bytes.count - 1)] = edges[Int(rng.next() % 5)]
        default:
            if !bytes.isEmpty { bytes[position] &+= 1 }
        }
    }
    return bytes
}

@Suite("Mutation robustness")
struct FuzzTests {
    @Test("100,000 mutated frames through decoder and typed parse: no crash, poisoning holds, both outcomes occur")
    func mutatedFrames() throws {
        let pool = Vectors.goldenFrameBytes + Vectors.frames("bad-frame").compactMap { Hex.decode($0.columns[0]) }
        try #require(pool.count > 30)
        var rng = SplitMix64(seed: 0xF4A3E5)
        var accepted = 0, rejected = 0, incomplete = 0
        for _ in 0..<100_000 {
            let input = mutate(pool[Int(rng.next() % UInt64(pool.count))], &rng, pool: pool)
            var decoder = FrameDecoder()
            let cut = Int(rng.next() % UInt64(input.count + 1))
            let maxHeaderSize = rng.next() % 2 == 0 ? 1_024 : 16_384
            var parsed = 0
            var decoderError: WireError?
            let error = wireError {
                decoder.feed(input[..<cut])
                while let item = try decoder.next() { try check(item, maxHeaderSize, &parsed) }
                decoder.feed(input[cut...])
                while let item = try decoder.next() { try check(item, maxHeaderSize, &parsed) }
            }
            decoderError = decoder.error
            if let error {
                rejected += 1
                if let decoderError {
                    #expect(error == decoderError)
                    #expect(wireError { _ = try decoder.next() } == decoderError)
                }
            } else if decoder.bufferedByteCount > 0 {
                incomplete += 1
            } else if parsed > 0 {
                accepted += 1
            }
        }
        #expect(accepted > 5_000)
        #expect(rejected > 5_000)
        #expect(incomplete > 1_000)
    }

    /// Typed-parses one item; a successful parse must survive a canonical round trip.
    private func check(_ item: DecodedItem, _ maxHeaderSize: Int, _ parsed: inout Int) throws(WireError) {
        guard case .frame(let frame) = item else { return }
        let typed = try FramePayload(frame, maxHeaderSize: maxHeaderSize)
        if case .settings(false, let entries) = typed {
            var settings = Settings()
            try settings.apply(entries)
        }
        var again = FrameDecoder()
        again.feed(Frame(typed, streamID: frame.streamID).encoded())
        guard case .frame(let reencoded)? = try again.next() else {
            Issue.record("canonical re-encoding of \(frame) did not decode")
            return
        }
        #expect(try FramePayload(reencoded, maxHeaderSize: maxHeaderSize) == typed)
        parsed += 1
    }

    @Test("50,000 mutated messages through MessageReader and a WireMessage: no crash, both outcomes occur")
    func mutatedMessages() throws {
        var rng = SplitMix64(seed: 0x5EED)
        var pool = (Vectors.encoding("ok") + Vectors.encoding("skip") + Vectors.encoding("bad"))
            .compactMap { Hex.decode($0.columns[0]) }
        for _ in 0..<50 { pool.append(Probe.random(&rng).serializedBytes()) }
        var accepted = 0, rejected = 0, probesAccepted = 0, probesRejected = 0
        for _ in 0..<50_000 {
            let input = mutate(pool[Int(rng.next() % UInt64(pool.count))], &rng, pool: pool)
            var fields: [Field] = []
            let error = wireError {
                var reader = MessageReader(input)
                while let field = try reader.next() {
                    fields.append(field)
                    _ = try? field.string()
                    if var nested = try? field.messageReader() {
                        while (try? nested.next()) != nil {}
                    }
                }
            }
            if error == nil {
                accepted += 1
                // Whatever was read re-encodes (minimally) to something that reads back the same.
                #expect(try rawFields(encodeRaw(fields)) == fields)
            } else {
                rejected += 1
            }
            if wireError({ _ = try Probe(serializedBytes: input) }) == nil { probesAccepted += 1 } else { probesRejected += 1 }
        }
        #expect(accepted > 2_000 && rejected > 2_000)
        #expect(probesAccepted > 500 && probesRejected > 500)
    }
}
