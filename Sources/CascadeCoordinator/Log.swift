import Foundation

/// One line to stderr, with a UTC timestamp: what an operator tails in the coordinator's log.
func log(_ message: String) {
    let line = "\(Date().formatted(.iso8601)) cascade-coordinator: \(message)\n"
    FileHandle.standardError.write(Data(line.utf8))
}
