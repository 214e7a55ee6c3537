import CascadeCrypto
import Testing

@Suite("Hex")
struct HexTests {
    @Test("round trips every byte value")
    func roundTrip() {
        let all = (0...255).map { UInt8($0) }
        #expect(Hex.decode(Hex.encode(all)) == all)
        #expect(Hex.encode([0x00, 0xAB, 0xFF]) == "00abff")
    }

    @Test("rejects odd lengths and non-hex characters, ignores whitespace", arguments: [
        ("abc", nil), ("zz", nil), ("0x00", nil), ("de ad\nbe ef", [0xDE, 0xAD, 0xBE, 0xEF] as [UInt8]?),
    ])
    func decoding(text: String, expected: [UInt8]?) {
        #expect(Hex.decode(text) == expected)
    }
}
