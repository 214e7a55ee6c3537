import CascadeWire
import Testing

@Suite("FrameDecoder")
struct FrameDecoderTests {
    /// Preface followed by every golden frame, and the items it must decode to.
    static func goldenStream() throws -> (bytes: [UInt8], items: [DecodedItem]) {
        var bytes = Preface.encoded()
        var items: [DecodedItem] = [.preface(.current)]
        for frameBytes in Vectors.goldenFrameBytes {
            var single = FrameDecoder()
            single.feed(frameBytes)
            let item = try #require(try single.next())
            items.append(item)
            bytes += frameBytes
        }
        return (bytes, items)
    }

    @Test("All golden frames concatenated decode the same whole, one byte at a time and in seeded random splits")
    func splits() throws {
        let (bytes, expected) = try Self.goldenStream()
        #expect(expected.count >= 25)
        #expect(try decodeAll(bytes, chunks: [bytes.count], expectPreface: true) == expected)
        #expect(try decodeAll(bytes, chunks: [1], expectPreface: true) == expected)
        var rng = SplitMix64(seed: 0xC0FFEE)
        for _ in 0..<300 {
            let chunks = (0..<8).map { _ in Int.random(in: 1...40, using: &rng) }
            #expect(try decodeAll(bytes, chunks: chunks, expectPreface: true) == expected)
        }
    }

    @Test("The preface is recognised at every split point and yields the version once")
    func prefaceSplits() throws {
        let frame = Frame.ping(42)
        let bytes = Preface.encoded(version: ProtocolVersion(major: 1, minor: 3)) + frame.encoded()
        for cut in 0...bytes.count {
            var decoder = FrameDecoder(expectPreface: true)
            var items: [DecodedItem] = []
            decoder.feed(bytes[..<cut])
            while let item = try decoder.next() { items.append(item) }
            decoder.feed(bytes[cut...])
            while let item = try decoder.next() { items.append(item) }
            #expect(items == [.preface(ProtocolVersion(major: 1, minor: 3)), .frame(frame)])
        }
    }

    @Test("A bad magic byte is rejected as soon as it arrives, before 12 bytes are buffered")
    func earlyBadMagic() {
        var decoder = FrameDecoder(expectPreface: true)
        decoder.feed([0x43, 0x41])
        #expect(wireError { _ = try decoder.next() } == nil)
        decoder.feed([0x54])  // "T" where "S" belongs
        let error = wireError { _ = try decoder.next() }
        #expect(error?.kind == .badMagic)
        #expect(error?.message.contains("byte 2") == true)
    }

    @Test("A header claiming 0xFFFFFFFF bytes is rejected right after its 10th byte, with nothing buffered")
    func hugeLengthRejectedFromHeader() {
        let header: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01]
        var decoder = FrameDecoder()
        for byte in header.dropLast() {
            decoder.feed([byte])
            #expect(wireError { _ = try decoder.next() } == nil)
        }
        decoder.feed([header[9]])
        let error = wireError { _ = try decoder.next() }
        #expect(error?.kind == .frameTooLarge)
        #expect(error?.code == .frameSizeError)
        #expect(error?.message == "DATA frame of 4294967295 bytes exceeds the 16384-byte limit (MAX_FRAME_SIZE)")
        #expect(decoder.bufferedByteCount == 0)
        decoder.feed([UInt8](repeating: 0, count: 1000))
        #expect(decoder.bufferedByteCount == 0)
    }

    @Test("After an error the decoder is poisoned: the same error forever, no later frame parsed")
    func poisoned() throws {
        var bytes = Frame.ping(1).encoded()
        bytes += [0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01]  // 65536-byte DATA: too large
        bytes += Frame.ping(2).encoded()
        var decoder = FrameDecoder()
        decoder.feed(bytes)
        #expect(try decoder.next() == .frame(.ping(1)))
        let first = try #require(wireError { _ = try decoder.next() })
        #expect(first.kind == .frameTooLarge)
        for _ in 0..<3 {
            #expect(wireError { _ = try decoder.next() } == first)
        }
        decoder.feed(Frame.ping(3).encoded())
        #expect(wireError { _ = try decoder.next() } == first)
        #expect(decoder.error == first)
    }

    @Test("Incomplete frames yield nil without consuming; truncation at every offset never parses a partial frame")
    func truncation() throws {
        for frameBytes in Vectors.goldenFrameBytes {
            for cut in 0..<frameBytes.count {
                var decoder = FrameDecoder()
                decoder.feed(frameBytes[..<cut])
                #expect(try decoder.next() == nil)
                #expect(decoder.bufferedByteCount == cut)
            }
        }
    }

    @Test("maxFrameSize can be changed between frames and applies to the next header")
    func changeMaxFrameSize() throws {
        let big = Frame.data(streamID: 1, [UInt8](repeating: 7, count: 20_000))
        var decoder = FrameDecoder(maxFrameSize: 32_768)
        decoder.feed(big.encoded())
        #expect(try decoder.next() == .frame(big))
        decoder.maxFrameSize = 16_384
        decoder.feed(big.encoded())
        #expect(wireError { _ = try decoder.next() }?.kind == .frameTooLarge)

        var exact = FrameDecoder(maxFrameSize: 20_000)
        exact.feed(big.encoded())
        #expect(try exact.next() == .frame(big))
    }

    @Test("Bulk DATA decodes in order with consumed bytes released (bounded buffering)")
    func bulk() throws {
        var decoder = FrameDecoder()
        var wire: [UInt8] = []
        for i in 0..<512 {
            FrameEncoder.appendData(streamID: 1, payload: [UInt8](repeating: UInt8(truncatingIfNeeded: i), count: 16_384),
                                    endStream: i == 511, to: &wire)
        }
        var received = 0
        var offset = 0
        var maxBuffered = 0
        while offset < wire.count {
            let end = min(offset + 65_536, wire.count)
            decoder.feed(wire[offset..<end])
            offset = end
            maxBuffered = max(maxBuffered, decoder.bufferedByteCount)
            while case .frame(let frame)? = try decoder.next() {
                #expect(frame.payload.count == 16_384)
                #expect(frame.payload.first == UInt8(truncatingIfNeeded: received))
                #expect(frame.flags.contains(.endStream) == (received == 511))
                received += 1
            }
        }
        #expect(received == 512)
        #expect(maxBuffered < 65_536 + 16_394)
        #expect(decoder.bufferedByteCount == 0)
    }

    /// Three frames: a 300 KiB DATA, a PING, a 100 KiB DATA, with distinct byte patterns.
    static func largeFrames() -> (wire: [UInt8], frames: [Frame]) {
        let first = (0..<300 * 1024).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let second = (0..<100 * 1024).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 1) }
        let frames = [Frame.data(streamID: 3, first), Frame.ping(9), Frame.data(streamID: 5, second, endStream: true)]
        return (frames.flatMap { $0.encoded() }, frames)
    }

    @Test("Frames over the large-frame threshold decode intact in any split, fed or read in place")
    func largeFramesInPlace() throws {
        let (wire, frames) = Self.largeFrames()
        let expected = frames.map { DecodedItem.frame($0) }
        let limit = 1 << 20
        #expect(try decodeAll(wire, chunks: [wire.count], maxFrameSize: limit) == expected)
        #expect(try decodeAll(wire, chunks: [65_536], maxFrameSize: limit) == expected)
        var rng = SplitMix64(seed: 0xFEED)
        for _ in 0..<20 {
            let chunks = (0..<6).map { _ in Int.random(in: 1...200_000, using: &rng) }
            #expect(try decodeAll(wire, chunks: chunks, maxFrameSize: limit) == expected)
        }
        // A reader that writes straight into the frame being assembled, in odd-sized reads.
        for readSize in [1, 4_099, 65_536, 1 << 20] {
            var decoder = FrameDecoder(maxFrameSize: limit)
            var items: [DecodedItem] = []
            var offset = 0
            var direct = 0
            while offset < wire.count {
                if decoder.directReadCapacity > 0 {
                    let wrote = decoder.readDirectly { target in
                        let count = min(target.count, readSize, wire.count - offset)
                        wire[offset..<(offset + count)].withUnsafeBytes { target.copyMemory(from: $0) }
                        return count
                    }
                    offset += wrote
                    direct += wrote
                } else {
                    let end = min(offset + readSize, wire.count)
                    decoder.feed(wire[offset..<end])
                    offset = end
                }
                while let item = try decoder.next() { items.append(item) }
            }
            #expect(items == expected)
            #expect(decoder.bufferedByteCount == 0)
            // The two large payloads went in place, except what came in the read with their header
            // (all of it when one read held everything).
            if readSize < wire.count {
                #expect(direct >= 400 * 1024 - 2 * readSize)
            } else {
                #expect(direct == 0)
            }
        }
    }

    @Test("A large frame cut short leaves nothing parsed, and a poisoned decoder takes no direct reads")
    func largeFrameTruncatedAndPoisoned() throws {
        let (wire, _) = Self.largeFrames()
        var decoder = FrameDecoder(maxFrameSize: 1 << 20)
        decoder.feed(wire[..<(200 * 1024)])
        #expect(try decoder.next() == nil)
        #expect(decoder.directReadCapacity == 300 * 1024 + Frame.headerSize - 200 * 1024)
        // Everything received and not yet returned, the frame's header included.
        #expect(decoder.bufferedByteCount == 200 * 1024)
        // A frame over the limit poisons the decoder before anything is allocated for it.
        var limited = FrameDecoder(maxFrameSize: 64 * 1024)
        limited.feed(wire[..<(Frame.headerSize + 10)])
        #expect(throws: WireError.self) { try limited.next() }
        #expect(limited.directReadCapacity == 0)
        #expect(limited.readDirectly { _ in 5 } == 0)
    }

    @Test("The encoder writes the 10-byte big-endian header and never sets the reserved stream bit")
    func encoderHeader() {
        var bytes: [UInt8] = []
        FrameEncoder.appendHeader(payloadLength: 0x01_0203, type: .headers, flags: .endStream,
                                  streamID: 0x8000_0005, to: &bytes)
        #expect(bytes == [0x00, 0x01, 0x02, 0x03, 0x01, 0x01, 0x00, 0x00, 0x00, 0x05])

        var direct: [UInt8] = []
        FrameEncoder.appendData(streamID: 3, payload: [1, 2, 3][...], endStream: true, to: &direct)
        #expect(direct == Frame.data(streamID: 3, [1, 2, 3], endStream: true).encoded())
    }

    @Test("A different major version is rejected with UNSUPPORTED_VERSION; any minor is accepted")
    func versions() throws {
        #expect(try Preface.parse(Preface.encoded(version: ProtocolVersion(major: 1, minor: 65_535))) ==
                ProtocolVersion(major: 1, minor: 65_535))
        let error = wireError { _ = try Preface.parse(Preface.encoded(version: ProtocolVersion(major: 2, minor: 0))) }
        #expect(error?.code == .unsupportedVersion)
        #expect(error?.message.contains("2.0") == true)
        #expect(try Preface.parse(Preface.magic) == nil)
    }
}
