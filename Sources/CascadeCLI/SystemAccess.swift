import Foundation

/// The process environment (kept out of the parser so tests never depend on it).
func processEnvironment() -> [String: String] {
    ProcessInfo.processInfo.environment
}

/// Reads a UTF-8 file, nil if it does not exist.
@Sendable func readFileFromDisk(_ path: String) throws -> String? {
    guard FileManager.default.fileExists(atPath: path) else { return nil }
    do {
        return try String(contentsOfFile: path, encoding: .utf8)
    } catch {
        throw CLIError.failure("cannot read '\(path)': \(error.localizedDescription)")
    }
}
