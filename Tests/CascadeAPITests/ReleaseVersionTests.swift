@testable import CascadeAPI
import Testing

@Suite("Release versions")
struct ReleaseVersionTests {
    func version(_ text: String) throws -> ReleaseVersion { try ReleaseVersion(text) }

    @Test("versions order numerically, pre-releases before their release, suffixes naturally")
    func ordering() throws {
        let ascending = [
            "0.9", "1", "1.0.1", "1.2-alpha", "1.2-alpha.2", "1.2-beta", "1.2-rc1", "1.2-rc2", "1.2-rc10", "1.2",
            "1.9", "1.10", "1.10.1", "2.0-1", "2.0-a", "2.0", "10.0", "18446744073709551615",
        ]
        let parsed = try ascending.map(version)
        for (a, b) in zip(parsed, parsed.dropFirst()) {
            #expect(a < b, "\(a) < \(b)")
            #expect(!(b < a), "not \(b) < \(a)")
        }
        #expect(parsed.shuffled().sorted() == parsed)
    }

    @Test("missing trailing numbers count as zero, and equal versions hash alike")
    func equality() throws {
        #expect(try version("1.2") == version("1.2.0"))
        #expect(try version("1") == version("1.0.0.0"))
        #expect(try Set([version("1.2"), version("1.2.0")]).count == 1)
        #expect(try version("1.2-rc1") != version("1.2"))
        #expect(try version("1.2-rc1") != version("1.2-rc01"))
        #expect(try version("1.2-rc1") < version("1.2-rc01"))
        #expect(try version("1.10.2").numbers == [1, 10, 2])
        #expect(try version("2.0-rc1").prerelease == "rc1")
        #expect(try version("2.0").prerelease == nil)
        #expect(try version("2.0-rc1").description == "2.0-rc1")
    }

    @Test("garbage is refused with a reason", arguments: [
        ("", "it is empty"),
        ("v1.2", "write 1.2 without the leading \"v\""),
        ("1..2", "it has an empty number (\"..\", or a dot at an end)"),
        ("1.", "it has an empty number (\"..\", or a dot at an end)"),
        (".1", "it has an empty number (\"..\", or a dot at an end)"),
        ("1.x", "\"x\" is not a decimal number"),
        ("1.2 ", "\"2 \" is not a decimal number"),
        ("01.2", "\"01\" has a leading zero"),
        ("1.18446744073709551616", "\"18446744073709551616\" is too large"),
        ("1.2.3.4.5.6.7.8.9", "it has more than 8 numbers"),
        ("1.2-", "the suffix after \"-\" is empty"),
        ("1.2-rc_1", "the suffix may hold only letters, digits and dots"),
        ("1.2-rc-1", "the suffix may hold only letters, digits and dots"),
        ("1.2+build", "\"2+build\" is not a decimal number"),
        (String(repeating: "1", count: 65), "it is longer than 64 bytes"),
    ])
    func garbage(_ text: String, _ reason: String) {
        let error = captureError(ReleaseError.self) { _ = try ReleaseVersion(text) }
        #expect(error?.code == .badVersion)
        #expect(error?.message == "\"\(text)\" is not a release version: \(reason)")
    }
}
