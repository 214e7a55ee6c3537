import CascadeTestSupport
import Foundation

/// Release bundles made from the built `cascade-agent` and `cascade-upgrader`: the same
/// binaries for every version, with a `TEST_BEHAVIOR` file to make a bad one.
enum TestBundles {
    /// Writes a bundle for `version` into `directory` and returns its path.
    static func make(
        _ version: String, in directory: TemporaryDirectory, behavior: [String] = [], gzip: Bool = false
    ) throws -> String {
        var tar = UstarWriter()
        tar.directory("bin")
        for name in ["cascade-agent", "cascade-upgrader"] {
            let binary = try Data(contentsOf: URL(fileURLWithPath: try builtProduct(name)))
            tar.file("bin/\(name)", Array(binary), mode: 0o755)
        }
        tar.file("VERSION", "\(version)\n")
        if !behavior.isEmpty { tar.file("TEST_BEHAVIOR", behavior.joined(separator: "\n") + "\n") }
        let suffix = behavior.isEmpty ? "" : "-" + behavior.joined(separator: "_").replacingOccurrences(of: "=", with: "-")
        let path = directory.file("cascade-\(version)\(suffix).tar")
        try Data(tar.finished()).write(to: URL(fileURLWithPath: path))
        guard gzip else { return path }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/gzip")
        process.arguments = ["-f", path]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw TestFailure("gzip \(path) failed") }
        return path + ".gz"
    }

    /// Writes arbitrary archive bytes as a bundle file.
    static func write(_ bytes: [UInt8], named name: String, in directory: TemporaryDirectory) throws -> String {
        let path = directory.file(name)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }
}
