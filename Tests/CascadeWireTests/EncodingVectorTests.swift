import CascadeWire
import Testing

@Suite("Encoding vectors (Protocols/vectors/encoding.txt)")
struct EncodingVectorTests {
    @Test("encoding.txt is found and has every section")
    func fileLoaded() {
        #expect(Vectors.encoding("ok").count >= 25)
        #expect(Vectors.encoding("skip").count >= 2)
        #expect(Vectors.encoding("bad").count >= 15)
        #expect(Set(Vectors.encoding.map(\.kind)) == ["ok", "skip", "bad"])
    }

    @Test("Golden messages decode to the stated fields and re-encode byte for byte", arguments: Vectors.encoding("ok"))
    func golden(_ vector: VectorLine) throws {
        let bytes = try vector.hex(0)
        let spec = try SpecField.parseList(vector.columns[1])
        var reader = MessageReader(bytes)
        let read = try SpecField.read(&reader, like: spec, known: nil)
        #expect(read == spec)
        #expect(SpecField.encode(spec) == bytes)
        #expect(encodeRaw(try rawFields(bytes)) == bytes)
    }

    @Test("Messages from older and newer schemas yield exactly the known fields", arguments: Vectors.encoding("skip"))
    func schemaEvolution(_ vector: VectorLine) throws {
        let bytes = try vector.hex(0)
        let known = Set(vector.columns[1].split(separator: ",").compactMap { Int($0) })
        let seen = try SpecField.parseList(vector.columns[2])
        var reader = MessageReader(bytes)
        #expect(try SpecField.read(&reader, like: seen, known: known) == seen)
        #expect(encodeRaw(try rawFields(bytes)) == bytes)
    }

    @Test("Bad messages fail with the stated code and condition", arguments: Vectors.encoding("bad"))
    func bad(_ vector: VectorLine) throws {
        let bytes = try vector.hex(0)
        var types: [Int: String] = [:]
        if vector.columns[1] != "-" {
            for entry in vector.columns[1].split(separator: ",") {
                let parts = entry.split(separator: ":")
                let number = try #require(parts.count == 2 ? Int(parts[0]) : nil)
                types[number] = String(parts[1])
            }
        }
        let error = try #require(wireError {
            var reader = MessageReader(bytes)
            try readAs(&reader, types)
        })
        #expect(error.code.name == vector.columns[2])
        #expect(error.kind.rawValue == vector.columns[3])
    }
}
