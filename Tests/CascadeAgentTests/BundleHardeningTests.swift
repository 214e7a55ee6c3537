import CascadeInstall
import CascadeTestSupport
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// One test per finding of the bundle review: each asserts the error and what is on disk after.
@Suite("Bundle hardening")
struct BundleHardeningTests {
    /// A release-shaped archive with one file, `VERSION`; `patch` edits it before the end marker.
    private static func archive(mode: UInt32 = 0o644, _ patch: (inout UstarWriter) -> Void = { _ in }) -> [UInt8] {
        var tar = UstarWriter()
        tar.file("VERSION", Array("1.0\n".utf8), mode: mode)
        patch(&tar)
        return tar.finished()
    }

    /// Asserts that `bytes` are refused as an unsafe bundle with a message holding `message`,
    /// and that neither the release nor anything outside it is left.
    private static func expectRefused(_ bytes: [UInt8], _ message: String, limits: UnpackLimits = .standard,
                                      sourceLocation: SourceLocation = #_sourceLocation) throws {
        let sandbox = try BundleSandbox()
        let error = try sandbox.unpack(bytes, limits: limits)
        #expect(error?.code == .unsafeBundle, "\(String(describing: error))", sourceLocation: sourceLocation)
        #expect(error?.message.contains(message) == true, "\(String(describing: error)) lacks \"\(message)\"", sourceLocation: sourceLocation)
        #expect(Posix.fileType(sandbox.release) == nil, "the half-unpacked release was left", sourceLocation: sourceLocation)
        #expect(sandbox.strayPaths().isEmpty, "\(sandbox.strayPaths())", sourceLocation: sourceLocation)
    }

    // MARK: - Checked arithmetic

    @Test("a base-256 mode (header offset 100) is read, not trapped on; a negative one is refused")
    func baseTwoFiftySixMode() throws {
        // 0o755 in GNU base-256: 0x80, then the value big-endian.
        let executable = Self.archive { $0.patch(header: 0, at: 100, [0x80, 0, 0, 0, 0, 0, 0x01, 0xed]) }
        let sandbox = try BundleSandbox()
        #expect(try sandbox.unpack(executable) == nil)
        #expect(access("\(sandbox.release)/VERSION", X_OK) == 0, "the base-256 mode 0o755 was not applied")
        let negative = Self.archive { $0.patch(header: 0, at: 100, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]) }
        try Self.expectRefused(negative, "has a negative or oversized base-256 tar number")
    }

    @Test("a base-256 checksum (header offset 148) is compared, not trapped on")
    func baseTwoFiftySixChecksum() throws {
        var tar = UstarWriter()
        tar.file("VERSION", "1.0\n")
        var right = tar.bytes
        let sum = UstarWriter.checksum(right, header: 0)
        let field: [UInt8] = [0x80, 0, 0, 0, 0, 0, UInt8(sum >> 8), UInt8(sum & 0xff)]
        for (index, byte) in field.enumerated() { right[148 + index] = byte }
        let sandbox = try BundleSandbox()
        #expect(try sandbox.unpack(right + [UInt8](repeating: 0, count: 1024)) == nil)
        #expect(try String(contentsOfFile: "\(sandbox.release)/VERSION", encoding: .utf8) == "1.0\n")
        var wrong = right
        wrong[155] &+= 1
        try Self.expectRefused(wrong + [UInt8](repeating: 0, count: 1024), "has a tar header with a bad checksum")
        // A lone 0x80 with nothing after it is the shape that used to trap on `prefix(-1)`.
        var lone = tar.bytes
        for (index, byte) in [UInt8](arrayLiteral: 0x80, 0, 0, 0, 0, 0, 0, 0).enumerated() { lone[148 + index] = byte }
        try Self.expectRefused(lone + [UInt8](repeating: 0, count: 1024), "has a tar header with a bad checksum")
    }

    @Test("a pax record length near Int.max is refused as malformed, and so is a pax size near Int64.max by the limit")
    func paxLengthNearIntMax() throws {
        var tar = UstarWriter()
        // A valid record first, so the hostile length is added to a non-zero index.
        tar.entry("PaxHeader", type: "x", mode: 0o644, content: UstarWriter.paxRecord("path", "abc") + Array("9223372036854775807 path=x\n".utf8))
        tar.file("VERSION", "1.0\n")
        try Self.expectRefused(tar.finished(), "has a malformed pax header")
        tar = UstarWriter()
        tar.entry("PaxHeader", type: "x", mode: 0o644, content: UstarWriter.paxRecord("path", "abc") + Array("9223372036854775800 a=b\n".utf8))
        tar.file("VERSION", "1.0\n")
        try Self.expectRefused(tar.finished(), "has a malformed pax header")
        tar = UstarWriter()
        tar.pax([("size", String(Int64.max))])
        tar.file("VERSION", "1.0\n")
        try Self.expectRefused(tar.finished(), "is \(Int64.max) bytes, over the limit of \(UnpackLimits.standard.maxEntryBytes) per entry")
    }

    // MARK: - Links

    @Test("a chain of links that each stay inside but together leave the release is refused")
    func symlinkChain() throws {
        var tar = UstarWriter()
        tar.directory("d")
        tar.symlink("d/l1", to: "..")
        tar.symlink("l2", to: "d/l1/..")
        try Self.expectRefused(tar.finished(), "the bundle link l2 points outside the release (to d/l1/..)")
        // The same chain with the middle link made after the one that goes through it.
        tar = UstarWriter()
        tar.directory("d")
        tar.symlink("l2", to: "d/x/../..")
        tar.symlink("d/x", to: ".")
        try Self.expectRefused(tar.finished(), "the bundle link l2 points outside the release (to d/x/../..)")
        // A chain that stays inside is fine.
        tar = UstarWriter()
        tar.directory("d")
        tar.symlink("d/l1", to: "..")
        tar.file("bin/tool", "x")
        tar.symlink("l2", to: "d/l1/bin/tool")
        let sandbox = try BundleSandbox()
        #expect(try sandbox.unpack(tar.finished()) == nil)
        #expect(try String(contentsOfFile: "\(sandbox.release)/l2", encoding: .utf8) == "x")
        #expect(BundleSandbox.treeProblems(sandbox.release).isEmpty)
    }

    @Test("a NUL byte in a pax link target or path is refused (the kernel would stop at it, the check would not)")
    func nulInPaxNames() throws {
        var tar = UstarWriter()
        tar.directory("d")
        tar.symlink("d/l1", to: "..")
        // To the kernel this is d/l1/.., outside; to a resolver reading on it ends in a name.
        tar.pax([("linkpath", "d/l1/..\0")])
        tar.symlink("up", to: "placeholder")
        try Self.expectRefused(tar.finished(), "the bundle link up has a NUL byte in its target")
        tar = UstarWriter()
        tar.pax([("path", "x\0y")])
        tar.file("placeholder", "x")
        try Self.expectRefused(tar.finished(), "has a NUL byte in its path")
    }

    @Test("a loop of links is refused")
    func linkLoop() throws {
        var tar = UstarWriter()
        tar.symlink("a", to: "b")
        tar.symlink("b", to: "a")
        try Self.expectRefused(tar.finished(), "goes through too many links or names to follow")
    }

    // MARK: - Entry kinds and modes

    @Test("a hard link is refused, even to a file inside the bundle")
    func hardLink() throws {
        try Self.expectRefused(Self.archive { $0.hardLink("copy", to: "VERSION") }, "the bundle entry copy is a hard link (to VERSION)")
    }

    @Test("character and block devices are refused")
    func device() throws {
        try Self.expectRefused(Self.archive { $0.characterDevice("null") }, "the bundle entry null is a character device")
        try Self.expectRefused(Self.archive { $0.entry("disk", type: "4", mode: 0o600) }, "the bundle entry disk is a block device")
    }

    @Test("a FIFO is refused")
    func fifo() throws {
        try Self.expectRefused(Self.archive { $0.entry("pipe", type: "6", mode: 0o644) }, "the bundle entry pipe is a FIFO")
    }

    @Test("a setuid file is refused")
    func setuid() throws {
        try Self.expectRefused(Self.archive(mode: 0o4755), "the bundle entry VERSION has mode 4755 with a setuid, setgid or sticky bit")
    }

    @Test("a setgid file or directory is refused")
    func setgid() throws {
        try Self.expectRefused(Self.archive(mode: 0o2755), "the bundle entry VERSION has mode 2755 with a setuid, setgid or sticky bit")
        try Self.expectRefused(Self.archive { $0.entry("lib", type: "5", mode: 0o2755) }, "the bundle entry lib has mode 2755")
    }

    @Test("a sticky directory is refused, also as the leading ./")
    func sticky() throws {
        try Self.expectRefused(Self.archive { $0.entry("tmp", type: "5", mode: 0o1777) }, "the bundle entry tmp has mode 1777")
        var tar = UstarWriter()
        tar.entry("./", type: "5", mode: 0o1777)
        try Self.expectRefused(tar.finished(), "the bundle entry ./ has mode 1777")
    }

    // MARK: - Size limits

    @Test("a signed plain bundle holds at most its own size, per entry and in all")
    func plainSizeLimit() throws {
        var tar = UstarWriter()
        tar.file("VERSION", "1.0\n")
        tar.file("data", [UInt8](repeating: 1, count: 3000))
        let honest = tar.finished()
        let sandbox = try BundleSandbox()
        #expect(try sandbox.unpack(honest, limits: .signedBundle(size: UInt64(honest.count))) == nil)
        // A manifest that says fewer bytes than one entry holds.
        try Self.expectRefused(honest, "the bundle entry data is 3000 bytes, over the limit of 2999 per entry", limits: .signedBundle(size: 2999))
        // Each entry under the bound, both together over it.
        try Self.expectRefused(honest, "the bundle holds more than 3003 bytes in all", limits: .signedBundle(size: 3003))
    }

    @Test("a signed gzip bundle may unpack to 8 times its size, and no more")
    func gzipSizeLimit() throws {
        let directory = try TemporaryDirectory()
        var tar = UstarWriter()
        tar.file("VERSION", "1.0\n")
        tar.file("zeros", [UInt8](repeating: 0, count: 200_000))
        let path = try TestBundles.write(tar.finished(), named: "zeros.tar", in: directory)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/gzip")
        process.arguments = ["-9", path]
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let compressed = try #require(FileManager.default.attributesOfItem(atPath: path + ".gz")[.size] as? Int)
        let limit = 8 * compressed
        #expect(limit < 200_000, "zeros should compress more than 8x")
        let error = #expect(throws: InstallError.self) {
            try BundleUnpacker.unpack(bundle: path + ".gz", to: directory.file("out"), limits: .signedBundle(size: UInt64(compressed)))
        }
        #expect(error?.message == "the bundle entry zeros is 200000 bytes, over the limit of \(limit) per entry")
        #expect(Posix.fileType(directory.file("out")) == nil)
        // The same bundle signed as big enough for its content unpacks.
        try BundleUnpacker.unpack(bundle: path + ".gz", to: directory.file("fits"), limits: .signedBundle(size: 200_004 / 8 + 1))
        #expect(Posix.fileType(directory.file("fits/zeros")) == S_IFREG)
    }

    // MARK: - VERSION

    @Test("a VERSION other than the manifest's is refused before anything is placed, and the release of that name is left alone")
    func versionMismatchPlacesNothing() throws {
        let directory = try TemporaryDirectory()
        let layout = AgentLayout(root: directory.file("root"))
        try layout.prepare()
        func release(_ version: String, marker: String) throws -> String {
            var tar = UstarWriter()
            tar.file("VERSION", "\(version)\n")
            tar.file("MARKER", marker)
            for name in ["cascade-agent", "cascade-upgrader"] { tar.file("bin/\(name)", [0x7f], mode: 0o755) }
            return try TestBundles.write(tar.finished(), named: "\(version)-\(marker).tar", in: directory)
        }
        let store = ReleaseStore(layout: layout)
        #expect(try store.add(bundle: try release("1.0", marker: "good"), expectedVersion: "1.0") == "1.0")
        // Signed as 1.1 but says 1.0 inside: before, it replaced releases/1.0 and then failed.
        let error = #expect(throws: InstallError.self) {
            _ = try store.add(bundle: try release("1.0", marker: "hostile"), expectedVersion: "1.1")
        }
        #expect(error?.code == .invalidRelease)
        #expect(error?.message == "the bundle's VERSION is 1.0, but its manifest says 1.1")
        #expect(Posix.list(layout.releasesDirectory(.main)) == ["1.0"], "a staging directory or 1.1 was left")
        #expect(try String(contentsOfFile: "\(layout.releaseDirectory(.main, "1.0"))/MARKER", encoding: .utf8) == "good")
    }
}
