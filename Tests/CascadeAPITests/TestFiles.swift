import CascadeTestSupport
import Foundation

/// A scratch directory for release files, removed when released.
typealias TemporaryDirectoryForAPI = TemporaryDirectory

extension Array where Element == UInt8 {
    func write(to path: String) throws {
        try Data(self).write(to: URL(fileURLWithPath: path))
    }
}
