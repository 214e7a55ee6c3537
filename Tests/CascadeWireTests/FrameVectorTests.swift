import CascadeWire
import Testing

@Suite("Frame vectors (Protocols/vectors/frames.txt)")
struct FrameVectorTests {
    @Test("frames.txt is found and has every section")
    func fileLoaded() {
        #expect(Vectors.frames("preface").count >= 2)
        #expect(Vectors.frames("frame").count >= 15)
        #expect(Vectors.frames("lenient").count >= 3)
        #expect(Vectors.frames("bad-preface").count >= 3)
        #expect(Vectors.frames("bad-frame").count >= 20)
        let kinds = Set(Vectors.frames.map(\.kind))
        #expect(kinds == ["preface", "frame", "lenient", "bad-preface", "bad-frame"])
        // Every known frame type has at least one golden vector.
        let goldenTypes = Set(Vectors.goldenFrameBytes.compactMap { $0.count >= 5 ? $0[4] : nil })
        #expect(Set<UInt8>(0...7).isSubset(of: goldenTypes))
        #expect(goldenTypes.contains(0x2A))
    }

    @Test("Preface vectors parse to their version and re-encode byte for byte", arguments: Vectors.frames("preface"))
    func preface(_ vector: VectorLine) throws {
        let bytes = try vector.hex(0)
        let version = try #require(try Preface.parse(bytes))
        #expect(version.description == vector.columns[1])
        #expect(Preface.encoded(version: version) == bytes)

        var decoder = FrameDecoder(expectPreface: true)
        decoder.feed(bytes)
        #expect(try decoder.next() == .preface(version))
        #expect(try decoder.next() == nil)
    }

    @Test("Golden frames decode to the stated typed frame and re-encode byte for byte", arguments: Vectors.frames("frame"))
    func golden(_ vector: VectorLine) throws {
        let bytes = try vector.hex(0)
        var decoder = FrameDecoder()
        decoder.feed(bytes)
        let item = try #require(try decoder.next())
        guard case .frame(let frame) = item else {
            Issue.record("expected a frame, got \(item)")
            return
        }
        #expect(try decoder.next() == nil)
        #expect(decoder.bufferedByteCount == 0)
        #expect(frame.encoded() == bytes)

        let typed = try FramePayload(frame)
        #expect(describe(typed, streamID: frame.streamID) == vector.columns[1])
        #expect(Frame(typed, streamID: frame.streamID).encoded() == bytes)
    }

    @Test("Lenient frames are accepted and re-encode to their canonical form", arguments: Vectors.frames("lenient"))
    func lenient(_ vector: VectorLine) throws {
        let bytes = try vector.hex(0)
        let canonical = try vector.hex(2)
        var decoder = FrameDecoder()
        decoder.feed(bytes)
        guard case .frame(let frame) = try #require(try decoder.next()) else {
            Issue.record("expected a frame")
            return
        }
        let typed = try FramePayload(frame)
        #expect(describe(typed, streamID: frame.streamID) == vector.columns[1])
        #expect(Frame(typed, streamID: frame.streamID).encoded() == canonical)

        // The canonical form is itself a golden frame with the same meaning.
        var again = FrameDecoder()
        again.feed(canonical)
        guard case .frame(let canonicalFrame) = try #require(try again.next()) else { return }
        #expect(canonicalFrame.encoded() == canonical)
        #expect(try FramePayload(canonicalFrame) == typed)
    }

    @Test("Bad prefaces are rejected with the stated code and condition", arguments: Vectors.frames("bad-preface"))
    func badPreface(_ vector: VectorLine) throws {
        let bytes = try vector.hex(0)
        var decoder = FrameDecoder(expectPreface: true)
        decoder.feed(bytes)
        let error = try #require(wireError { _ = try decoder.next() })
        #expect(error.code.name == vector.columns[1])
        #expect(error.kind.rawValue == vector.columns[2])
        #expect(error.isConnectionError)
        // The standalone parser agrees, and the decoder stays poisoned.
        #expect(wireError { _ = try Preface.parse(bytes) } == error)
        #expect(wireError { _ = try decoder.next() } == error)
    }

    @Test("Bad frames are rejected with the stated code, condition and scope", arguments: Vectors.frames("bad-frame"))
    func badFrame(_ vector: VectorLine) throws {
        let bytes = try vector.hex(0)
        var decoder = FrameDecoder()
        decoder.feed(bytes)
        var frames = 0
        let error = try #require(wireError {
            while let item = try decoder.next() {
                guard case .frame(let frame) = item else { continue }
                frames += 1
                if case .settings(false, let entries) = try FramePayload(frame) {
                    var settings = Settings()
                    try settings.apply(entries)
                }
            }
        })
        #expect(frames <= 1)
        #expect(error.code.name == vector.columns[1])
        #expect(error.kind.rawValue == vector.columns[2])
        #expect(error.isConnectionError == (vector.columns[3] == "connection"))
        #expect(["connection", "stream"].contains(vector.columns[3]))
        #expect(!error.message.isEmpty)
    }
}
