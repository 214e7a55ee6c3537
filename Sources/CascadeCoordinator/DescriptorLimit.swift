import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The process's open-file limit (RLIMIT_NOFILE). Every agent session holds a socket, so the
/// usual soft limit of 1024 would cap a fleet at about a thousand agents for no reason.
enum DescriptorLimit {
    /// The soft limit now, if it can be read.
    static var current: UInt64? {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
        return UInt64(limit.rlim_cur)
    }

    /// Raises the soft limit to the hard limit and returns one sentence for the log saying
    /// which limit the coordinator runs with (and why not more, if raising failed).
    static func raiseToHard() -> String {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else {
            return "cannot read the open-file limit: \(String(cString: strerror(errno)))"
        }
        let before = limit.rlim_cur
        var target = limit.rlim_max
        // An unlimited hard limit (RLIM_INFINITY, all ones; Swift cannot import the macro)
        // cannot be the soft one: the kernel's ceiling is fs.nr_open.
        if target == rlim_t.max { target = rlim_t(nrOpen ?? 1_048_576) }
        guard target > before else { return "open-file limit \(before) (the hard limit)" }
        limit.rlim_cur = target
        guard setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else {
            return "open-file limit \(before): raising it to \(target) failed: \(String(cString: strerror(errno)))"
        }
        return "open-file limit \(target) (raised from \(before))"
    }

    /// fs.nr_open: the most descriptors one process may be allowed.
    private static var nrOpen: UInt64? {
        guard let text = try? String(contentsOfFile: "/proc/sys/fs/nr_open", encoding: .utf8) else { return nil }
        return UInt64(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
