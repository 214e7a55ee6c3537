import CascadeWire
import Testing

/// The "Probe" v2 reference schema from encoding.txt, as a WireMessage.
struct Probe: WireMessage, Equatable {
    var id: UInt64 = 0
    var name = ""
    var tags: [UInt64] = []
    var children: [Probe] = []

    init() {}

    init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            switch field.number {
            case 1: id = try field.uint64()
            case 2: name = try field.string()
            case 3: try field.appendVarints(to: &tags)
            case 4: children.append(try field.message())
            default: continue  // unknown: the reader already stepped over it
            }
        }
    }

    func encode(to writer: inout MessageWriter) {
        if id != 0 { writer.writeVarint(field: 1, id) }
        if !name.isEmpty { writer.writeString(field: 2, name) }
        if !tags.isEmpty { writer.writePackedVarints(field: 3, tags) }
        for child in children { writer.writeMessage(field: 4, child) }
    }

    static func random(_ rng: inout SplitMix64, depth: Int = 0) -> Probe {
        var probe = Probe()
        if Bool.random(using: &rng) { probe.id = randomUInt64(&rng) }
        if Bool.random(using: &rng) { probe.name = randomString(&rng) }
        probe.tags = (0..<Int.random(in: 0...4, using: &rng)).map { _ in randomUInt64(&rng) }
        if depth < 3 {
            probe.children = (0..<Int.random(in: 0...2, using: &rng)).map { _ in random(&rng, depth: depth + 1) }
        }
        return probe
    }
}

/// Values biased toward edges (0, powers of two, max) as well as uniform ones.
func randomUInt64(_ rng: inout SplitMix64) -> UInt64 {
    switch rng.next() % 4 {
    case 0: return UInt64.random(in: 0...300, using: &rng)
    case 1: return UInt64(1) << (rng.next() % 64)
    case 2: return UInt64.max &- (rng.next() % 3)
    default: return rng.next() >> (rng.next() % 64)
    }
}

func randomString(_ rng: inout SplitMix64) -> String {
    let pool: [Unicode.Scalar] = ["a", "z", "0", " ", "é", "✓", "\u{0}", "\u{10FFFF}", "😀", "\u{7F}", "\u{800}"]
    var text = ""
    for _ in 0..<Int.random(in: 0...12, using: &rng) {
        text.unicodeScalars.append(pool[Int(rng.next() % UInt64(pool.count))])
    }
    return text
}

func randomSpecField(_ rng: inout SplitMix64, depth: Int = 0) -> SpecField {
    let number = rng.next() % 5 == 0 ? Int.random(in: 1...WireLimits.maxFieldNumber, using: &rng) : Int.random(in: 1...20, using: &rng)
    let value: SpecField.Value
    switch rng.next() % (depth < 3 ? 10 : 9) {
    case 0: value = .varint(randomUInt64(&rng))
    case 1: value = .sint(Int64(bitPattern: randomUInt64(&rng)))
    case 2: value = .bool(Bool.random(using: &rng))
    case 3: value = .fixed64(randomUInt64(&rng))
    case 4:
        let d = Double(bitPattern: rng.next())
        value = .double(d.isNaN ? -0.0 : d)
    case 5: value = .fixed32(UInt32(truncatingIfNeeded: randomUInt64(&rng)))
    case 6: value = .string(randomString(&rng))
    case 7: value = .bytes((0..<Int.random(in: 0...20, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) })
    case 8: value = .packed((0..<Int.random(in: 0...6, using: &rng)).map { _ in randomUInt64(&rng) })
    default: value = .message((0..<Int.random(in: 0...4, using: &rng)).map { _ in randomSpecField(&rng, depth: depth + 1) })
    }
    return SpecField(number: number, value: value)
}

@Suite("Tagged message encoding")
struct MessageTests {
    @Test("Varints round trip at edge and random values with the predicted size")
    func varints() throws {
        var rng = SplitMix64(seed: 1)
        var values: [UInt64] = [0, 1, 127, 128, 16_383, 16_384, UInt64(UInt32.max), 1 << 63, .max]
        for _ in 0..<3_000 { values.append(randomUInt64(&rng)) }
        for value in values {
            var bytes: [UInt8] = []
            Varint.append(value, to: &bytes)
            #expect(bytes.count == Varint.size(of: value))
            var index = 0
            #expect(try Varint.decode(bytes[...], at: &index) == value)
            #expect(index == bytes.count)
        }
        // Non-minimal encodings are accepted: 0 as two bytes.
        var index = 0
        #expect(try Varint.decode([0x80, 0x00][...], at: &index) == 0)
    }

    @Test("Zigzag maps small magnitudes to small numbers and round trips")
    func zigzag() {
        #expect(Varint.zigzag(0) == 0)
        #expect(Varint.zigzag(-1) == 1)
        #expect(Varint.zigzag(1) == 2)
        #expect(Varint.zigzag(-2) == 3)
        #expect(Varint.zigzag(.min) == .max)
        var rng = SplitMix64(seed: 2)
        for _ in 0..<3_000 {
            let v = Int64(bitPattern: rng.next())
            #expect(Varint.unzigzag(Varint.zigzag(v)) == v)
        }
    }

    @Test("Every field kind round trips through MessageWriter and MessageReader (3000 seeded messages)")
    func roundTrips() throws {
        var rng = SplitMix64(seed: 3)
        for _ in 0..<3_000 {
            let spec = (0..<Int.random(in: 0...6, using: &rng)).map { _ in randomSpecField(&rng) }
            let bytes = SpecField.encode(spec)
            var reader = MessageReader(bytes)
            #expect(try SpecField.read(&reader, like: spec, known: nil) == spec)
            #expect(encodeRaw(try rawFields(bytes)) == bytes)
        }
    }

    @Test("Float and double keep their exact bit patterns, NaN payloads included")
    func floatingPoint() throws {
        var writer = MessageWriter()
        let nan = Double(bitPattern: 0x7FF8_0000_DEAD_BEEF)
        writer.writeDouble(field: 1, nan)
        writer.writeFloat(field: 2, -Float.infinity)
        let fields = try rawFields(writer.bytes)
        #expect(try fields[0].double().bitPattern == nan.bitPattern)
        #expect(try fields[1].float() == -Float.infinity)
    }

    @Test("WireMessage round trips, omits defaults, and skips unknown fields of every wire type")
    func probes() throws {
        #expect(Probe().serializedBytes().isEmpty)
        var rng = SplitMix64(seed: 4)
        for _ in 0..<500 {
            let probe = Probe.random(&rng)
            let bytes = probe.serializedBytes()
            #expect(try Probe(serializedBytes: bytes) == probe)

            // A "newer" writer: the same fields with unknown ones interleaved.
            var writer = MessageWriter()
            writer.writeFixed64(field: 6, rng.next())
            writer.writeBytes(field: 1_000, [0xFF, 0xFF])  // not a valid message: must not be parsed
            var reader = MessageReader(bytes)
            while let field = try reader.next() {
                switch field.value {
                case .varint(let v): writer.writeVarint(field: field.number, v)
                case .bytes(let b): writer.writeBytes(field: field.number, b)
                default: Issue.record("Probe writes no fixed fields")
                }
                writer.writeSInt64(field: 5, -7)
                writer.writeFixed32(field: 7, 9)
            }
            writer.writeVarint(field: WireLimits.maxFieldNumber, 1)
            #expect(try Probe(serializedBytes: writer.bytes) == probe)
        }
    }

    @Test("Truncating a message at every offset yields the fields before the cut on a boundary and throws otherwise")
    func truncation() throws {
        var rng = SplitMix64(seed: 5)
        var samples = Vectors.encoding("ok").compactMap { Hex.decode($0.columns[0]) }
        for _ in 0..<40 {
            samples.append(SpecField.encode((0..<4).map { _ in randomSpecField(&rng) }))
        }
        for bytes in samples {
            var reader = MessageReader(bytes)
            var boundaries: [Int: Int] = [0: 0]  // byte offset -> fields before it
            var all: [Field] = []
            while let field = try reader.next() {
                all.append(field)
                boundaries[reader.offset] = all.count
            }
            for cut in 0...bytes.count {
                let prefix = Array(bytes[..<cut])
                var result: [Field] = []
                let error = wireError {
                    var r = MessageReader(prefix)
                    while let field = try r.next() { result.append(field) }
                }
                if let count = boundaries[cut] {
                    #expect(error == nil)
                    #expect(result == Array(all.prefix(count)))
                } else {
                    #expect(error?.kind == .truncated, "cut \(cut) of \(Hex.encode(bytes))")
                }
            }
        }
    }

    @Test("Nested messages decode to depth 32 and fail at depth 33")
    func depthLimit() throws {
        func nested(_ levels: Int) -> [UInt8] {
            var bytes: [UInt8] = []
            for _ in 0..<levels {
                var writer = MessageWriter()
                writer.writeBytes(field: 4, bytes)
                bytes = writer.bytes
            }
            return bytes
        }
        var probe = try Probe(serializedBytes: nested(31))
        var depth = 1
        while let child = probe.children.first {
            probe = child
            depth += 1
        }
        #expect(depth == 32)
        #expect(wireError { _ = try Probe(serializedBytes: nested(32)) }?.kind == .nestingTooDeep)
    }

    @Test("Typed accessors reject the wrong wire type and out-of-range values; packed and unpacked both decode")
    func accessors() throws {
        var writer = MessageWriter()
        writer.writeVarint(field: 1, UInt64(UInt32.max) + 1)
        writer.writeSInt64(field: 2, Int64(Int32.min) - 1)
        writer.writeVarint(field: 3, 5)
        writer.writePackedVarints(field: 3, [6, 7])
        writer.writeVarint(field: 3, 8)
        writer.writeBool(field: 4, true)
        writer.writePackedSInt64(field: 5, [-1, 1, .min])
        let fields = try rawFields(writer.bytes)
        #expect(wireError { _ = try fields[0].uint32() }?.kind == .valueOutOfRange)
        #expect(wireError { _ = try fields[1].sint32() }?.kind == .valueOutOfRange)
        #expect(wireError { _ = try fields[0].string() }?.kind == .wrongWireType)
        #expect(wireError { _ = try fields[0].fixed64() }?.kind == .wrongWireType)
        #expect(wireError { _ = try fields[2].messageReader() }?.kind == .wrongWireType)
        var values: [UInt64] = []
        for field in fields where field.number == 3 { try field.appendVarints(to: &values) }
        #expect(values == [5, 6, 7, 8])
        #expect(try fields[5].bool())
        var signed: [Int64] = []
        try fields[6].appendSInt64s(to: &signed)
        #expect(signed == [-1, 1, .min])
    }
}
