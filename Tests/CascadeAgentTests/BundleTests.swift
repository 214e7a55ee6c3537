import CascadeInstall
import CascadeTestSupport
import Foundation
import Testing

@Suite("Release bundles")
struct BundleTests {
    @Test("a bundle unpacks into releases/<VERSION> with executable binaries, plain or gzip-compressed", arguments: [false, true])
    func unpacksARelease(gzip: Bool) throws {
        let directory = try TemporaryDirectory()
        let layout = AgentLayout(root: directory.file("root"))
        try layout.prepare()
        let bundle = try TestBundles.make("2.3.1", in: directory, gzip: gzip)
        let version = try ReleaseStore(layout: layout).add(bundle: bundle)
        #expect(version == "2.3.1")
        let release = layout.releaseDirectory(.main, "2.3.1")
        #expect(try ReleaseCheck.validate(release) == "2.3.1")
        #expect(FileManager.default.isExecutableFile(atPath: "\(release)/bin/cascade-agent"))
        #expect(Posix.list(layout.releasesDirectory(.main)) == ["2.3.1"])
    }

    @Test("links that stay inside the release and a leading ./ entry are accepted")
    func insideLinksAreFine() throws {
        let directory = try TemporaryDirectory()
        var tar = UstarWriter()
        tar.directory("./")
        tar.directory("lib")
        tar.file("lib/data.txt", "hello")
        tar.symlink("data", to: "lib/data.txt")
        tar.symlink("lib/self", to: "../lib/./data.txt")
        let bundle = try TestBundles.write(tar.finished(), named: "inside.tar", in: directory)
        let destination = directory.file("out")
        try BundleUnpacker.unpack(bundle: bundle, to: destination)
        #expect(try String(contentsOfFile: "\(destination)/data", encoding: .utf8) == "hello")
        #expect(try String(contentsOfFile: "\(destination)/lib/self", encoding: .utf8) == "hello")
    }

    /// Each hostile archive, and the path outside the release it tries to write.
    static let hostile: [(String, [UInt8], String)] = {
        var cases: [(String, [UInt8], String)] = []
        var tar = UstarWriter()
        tar.file("/tmp/cascade-hostile-absolute", "x")
        cases.append(("an absolute path", tar.finished(), "/tmp/cascade-hostile-absolute"))
        tar = UstarWriter()
        tar.file("bin/../../escaped", "x")
        cases.append(("a .. path", tar.finished(), "escaped"))
        tar = UstarWriter()
        tar.symlink("out", to: "..")
        tar.file("out/escaped", "x")
        cases.append(("a link to the parent, then a file through it", tar.finished(), "escaped"))
        tar = UstarWriter()
        tar.symlink("etc", to: "/etc")
        cases.append(("an absolute link", tar.finished(), "etc"))
        tar = UstarWriter()
        tar.symlink("lib/up", to: "../../escaped")
        cases.append(("a relative link out", tar.finished(), "escaped"))
        tar = UstarWriter()
        tar.hardLink("passwd", to: "/etc/passwd")
        cases.append(("a hard link", tar.finished(), "passwd"))
        tar = UstarWriter()
        tar.characterDevice("null")
        cases.append(("a device file", tar.finished(), "null"))
        tar = UstarWriter()
        tar.file("big", [UInt8](repeating: 7, count: 5000))
        cases.append(("an entry over the size limit", tar.finished(), "big"))
        tar = UstarWriter()
        tar.entry("short", type: "0", mode: 0o644, content: [1, 2, 3], declaredSize: 1 << 20)
        cases.append(("an entry longer than the archive", tar.bytes, "short"))
        tar = UstarWriter()
        tar.entry("bad", type: "0", mode: 0o644, content: [1], corruptChecksum: true)
        cases.append(("a bad header checksum", tar.finished(), "bad"))
        return cases
    }()

    @Test("hostile bundles are refused and nothing is written outside the release", arguments: 0..<hostile.count)
    func hostileBundlesAreRefused(index: Int) throws {
        let (name, bytes, target) = Self.hostile[index]
        let directory = try TemporaryDirectory()
        let layout = AgentLayout(root: directory.file("root"))
        try layout.prepare()
        let bundle = try TestBundles.write(bytes, named: "hostile.tar", in: directory)
        let limits = UnpackLimits(maxEntryBytes: 4096, maxTotalBytes: 1 << 20)
        do {
            _ = try ReleaseStore(layout: layout).add(bundle: bundle, limits: limits)
            Issue.record("\(name) was accepted")
        } catch {
            #expect(error.code == .unsafeBundle, "\(name): \(error)")
        }
        #expect(Posix.list(layout.releasesDirectory(.main)).isEmpty, "\(name) left files behind")
        let outside = target.hasPrefix("/") ? target : "\(layout.root)/main/\(target)"
        #expect(Posix.fileType(outside) == nil, "\(name) wrote \(outside)")
        #expect(Posix.fileType("\(layout.root)/\(target)") == nil)
    }

    @Test("a bundle without a VERSION or a binary is not a release")
    func incompleteReleaseIsRefused() throws {
        let directory = try TemporaryDirectory()
        let layout = AgentLayout(root: directory.file("root"))
        try layout.prepare()
        var tar = UstarWriter()
        tar.file("VERSION", "1.0\n")
        tar.file("bin/cascade-agent", [0x7f], mode: 0o755)
        let bundle = try TestBundles.write(tar.finished(), named: "partial.tar", in: directory)
        #expect(throws: InstallError.self) { _ = try ReleaseStore(layout: layout).add(bundle: bundle) }
        tar = UstarWriter()
        tar.file("VERSION", "../1.0\n")
        let badVersion = try TestBundles.write(tar.finished(), named: "version.tar", in: directory)
        let error = #expect(throws: InstallError.self) { _ = try ReleaseStore(layout: layout).add(bundle: badVersion) }
        #expect(error?.code == .invalidRelease)
        #expect(Posix.list(layout.releasesDirectory(.main)).isEmpty)
    }
}
