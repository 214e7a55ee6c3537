@testable import CascadeInstall
import CascadeTestSupport
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A temporary directory laid out to catch a bundle writing outside its release:
/// `<dir>/bundle.tar`, `<dir>/sandbox/release` (the destination) and `<dir>/sandbox/sentinel`,
/// which must stay empty. `..` from the release lands in `sandbox`, `../..` in `<dir>`.
struct BundleSandbox {
    let directory: TemporaryDirectory
    let bundle: String
    let sandbox: String
    let release: String
    let sentinel: String

    /// `inMemory` puts it on /dev/shm when that is a writable directory (the fuzz makes and
    /// removes hundreds of thousands of small files; tmpfs does that several times faster).
    init(inMemory: Bool = false) throws {
        let shm = "/dev/shm"
        let base = inMemory && Posix.fileType(shm) == S_IFDIR && access(shm, W_OK) == 0 ? shm : nil
        directory = try TemporaryDirectory(prefix: "cascade-bundle", base: base)
        bundle = directory.file("bundle.tar")
        sandbox = directory.file("sandbox")
        release = "\(sandbox)/release"
        sentinel = "\(sandbox)/sentinel"
        try Posix.makeDirectories(sentinel)
    }

    /// Unpacks `bytes` through the public entry point; nil when it was accepted.
    func unpack(_ bytes: [UInt8], limits: UnpackLimits = .standard) throws -> InstallError? {
        try Data(bytes).write(to: URL(fileURLWithPath: bundle))
        do {
            try BundleUnpacker.unpack(bundle: bundle, to: release, limits: limits)
            return nil
        } catch {
            return error
        }
    }

    /// Whatever exists outside the release that the layout did not put there.
    func strayPaths() -> [String] {
        var stray = Posix.names(sentinel).map { "\(sentinel)/\($0)" }
        stray += Posix.names(sandbox).filter { $0 != "release" && $0 != "sentinel" }.map { "\(sandbox)/\($0)" }
        stray += Posix.names(directory.path).filter { $0 != "bundle.tar" && $0 != "sandbox" }.map { "\(directory.path)/\($0)" }
        return stray
    }

    /// Every problem with the unpacked tree under `root`: a link that resolves outside it (read
    /// back from the disk, link by link), a loop of links, a set-id or sticky bit, or anything
    /// that is not a file, directory or link.
    static func treeProblems(_ root: String) -> [String] {
        var problems: [String] = []
        func walk(_ relative: [String]) {
            let path = ([root] + relative).joined(separator: "/")
            var info = stat()
            guard lstat(path, &info) == 0 else { return problems.append("\(path) vanished") }
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                for name in Posix.names(path) { walk(relative + [name]) }
            case S_IFREG:
                if info.st_mode & 0o7000 != 0 { problems.append("\(path) has mode \(String(info.st_mode, radix: 8))") }
            case S_IFLNK:
                if let problem = linkProblem(root, relative) { problems.append(problem) }
            default:
                problems.append("\(path) is neither a file, a directory nor a link")
            }
        }
        walk([])
        return problems
    }

    /// Resolves the link at `relative` as the kernel would, reading each link on the way from
    /// the disk; names that do not exist are taken as plain names.
    private static func linkProblem(_ root: String, _ relative: [String]) -> String? {
        var current = Array(relative.dropLast())
        guard var pending = readLink(([root] + relative).joined(separator: "/")).map({ Array($0.split(separator: "/").map(String.init).reversed()) }) else {
            return "\(relative.joined(separator: "/")) cannot be read"
        }
        var hops = 0
        while let component = pending.popLast() {
            if component == "." { continue }
            if component == ".." {
                guard !current.isEmpty else { return "\(relative.joined(separator: "/")) resolves outside the release" }
                current.removeLast()
                continue
            }
            current.append(component)
            let path = ([root] + current).joined(separator: "/")
            guard let target = readLink(path) else { continue }
            hops += 1
            guard hops <= 40 else { return "\(relative.joined(separator: "/")) is a loop of links" }
            if target.hasPrefix("/") { return "\(relative.joined(separator: "/")) leads to the absolute \(target)" }
            current.removeLast()
            pending += target.split(separator: "/").map(String.init).reversed()
        }
        return nil
    }

    /// The target of the link at `path`, nil when it is not a link.
    private static func readLink(_ path: String) -> String? {
        var buffer = [UInt8](repeating: 0, count: 4097)
        let count = buffer.withUnsafeMutableBytes { readlink(path, $0.baseAddress!.assumingMemoryBound(to: CChar.self), 4096) }
        guard count >= 0 else { return nil }
        return String(decoding: buffer[0..<count], as: UTF8.self)
    }
}
