import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What an agent would make of a bundle, checked before it is signed: unpacked with the
/// agent's own unpacker and limits into a scratch directory, then checked as a release is
/// before its switch (VERSION, both programs executable). Nothing is kept.
public enum BundleCheck {
    /// The bundle's VERSION, or the agent's reason to refuse it.
    public static func version(ofBundle bundle: String, limits: UnpackLimits = .standard) throws(InstallError) -> String {
        let base = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array("\(base)/cascade-bundle-check.XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else {
            throw InstallError(.io, "cannot make a scratch directory in \(base): \(Posix.lastError)")
        }
        let scratch = String(cString: made)
        defer { Posix.removeTree(scratch) }
        let tree = "\(scratch)/release"
        do throws(InstallError) {
            try BundleUnpacker.unpack(bundle: bundle, to: tree, limits: limits)
            return try ReleaseCheck.validate(tree)
        } catch {
            // The scratch directory means nothing to whoever asked: name the bundle instead.
            throw InstallError(error.code, error.message.replacingOccurrences(of: "the release in \(tree)", with: "the bundle")
                .replacingOccurrences(of: tree, with: "the bundle"))
        }
    }
}
