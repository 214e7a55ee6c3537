#if canImport(Glibc)
import Glibc
#endif

/// What makes a directory a release: `VERSION` plus both programs' binaries in `bin/`.
public enum ReleaseCheck {
    /// Whether `version` is usable as a directory name and a label: 1–64 of [A-Za-z0-9._+-],
    /// not starting with a dot.
    public static func isValidVersion(_ version: String) -> Bool {
        guard (1...64).contains(version.utf8.count), !version.hasPrefix(".") else { return false }
        return version.utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || "._+-".utf8.contains(byte)
        }
    }

    /// Reads and checks the release in `directory`; returns its version.
    public static func validate(_ directory: String) throws(InstallError) -> String {
        guard Posix.fileType("\(directory)/VERSION") == S_IFREG,
              let version = try Posix.readText("\(directory)/VERSION")
        else { throw InstallError(.invalidRelease, "the release in \(directory) has no VERSION file") }
        guard isValidVersion(version) else {
            throw InstallError(.invalidRelease, "the release in \(directory) has an invalid VERSION \"\(version.prefix(80))\"")
        }
        for program in Program.allCases {
            let binary = "\(directory)/bin/\(program.binaryName)"
            guard Posix.fileType(binary) == S_IFREG, access(binary, X_OK) == 0 else {
                throw InstallError(.invalidRelease, "the release \(version) has no executable bin/\(program.binaryName)")
            }
        }
        return version
    }

    /// The version of the release that holds the running executable (`<release>/bin/<name>`),
    /// or nil when it does not run from a release (e.g. straight from a build directory).
    public static func runningVersion() -> String? {
        guard let release = runningReleaseDirectory() else { return nil }
        guard let version = try? Posix.readText("\(release)/VERSION"), isValidVersion(version) else { return nil }
        return version
    }

    /// `<release>` for an executable at `<release>/bin/<name>`, resolved through symlinks.
    public static func runningReleaseDirectory() -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        let executable = String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let parts = executable.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count >= 3, parts[parts.count - 2] == "bin" else { return nil }
        return parts.dropLast(2).joined(separator: "/")
    }
}
