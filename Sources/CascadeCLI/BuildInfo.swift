import Foundation

/// What `--version` prints: the product's version, the protocol versions it speaks
/// (Protocols/*.md) and when this binary was built (its file's modification time: a build
/// rewrites it, and it needs no build step of its own).
public enum BuildInfo {
    /// The product version; bumped with each release of the Cascade programs.
    public static let version = "1.2.0"
    /// wire.md, rpc.md and services.md, in that order.
    public static let protocols = "wire 1.0, rpc 1.0, services 1.2"

    /// "cascadectl 1.2.0 (wire 1.0, rpc 1.0, services 1.2; built 2026-12-04T20:10:00Z)".
    public static func line(program: String) -> String {
        var built = ""
        let binary = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        if let date = (try? FileManager.default.attributesOfItem(atPath: binary))?[.modificationDate] as? Date {
            built = "; built \(date.formatted(.iso8601))"
        }
        return "\(program) \(version) (\(protocols)\(built))"
    }
}
