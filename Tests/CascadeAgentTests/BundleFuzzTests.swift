@testable import CascadeInstall
import CascadeTestSupport
import Foundation
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// splitmix64: a tiny PRNG that gives the same sequence for a seed on every machine.
struct SplitMix64 {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
    mutating func chance(_ percent: Int) -> Bool { below(100) < percent }
    mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }
    mutating func bytes(_ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var index = 0
        while index < count {
            var word = next()
            for _ in 0..<min(8, count - index) {
                bytes[index] = UInt8(truncatingIfNeeded: word)
                word >>= 8
                index += 1
            }
        }
        return bytes
    }
}

/// Valid bundles mutated where parsers go wrong — header fields, sizes, pax records, long
/// names, link names and entry order — each unpacked into a sandbox. Every archive must be
/// either unpacked wholly inside the release or refused with an InstallError leaving nothing,
/// and nothing may ever appear outside the release.
@Suite("Bundle fuzz")
struct BundleFuzzTests {
    static let seed: UInt64 = 0xC45C_ADE0_B0D1_E5
    /// CASCADE_BUNDLE_FUZZ_ARCHIVES runs more (or fewer, when investigating) with the same seed.
    static let archives = ProcessInfo.processInfo.environment["CASCADE_BUNDLE_FUZZ_ARCHIVES"].flatMap { Int($0) } ?? 100_000
    /// Small bounds, so that size mutations reach them without writing much.
    static let limits = UnpackLimits(maxEntryBytes: 4096, maxTotalBytes: 12_000, maxEntries: 64)

    /// One member as the fuzzer builds it, with the metadata records written in front of it.
    struct Member {
        var path: String
        var type: Character
        var mode: UInt32 = 0o644
        var content: [UInt8] = []
        var link = ""
        var declaredSize: Int?
        var pax: [UInt8]?
        var longName: [UInt8]?
        var longLink: [UInt8]?
    }

    /// Names and link targets the mutations draw from: harmless ones, so that many mutants still
    /// unpack, and every way out we know of.
    struct Words {
        let names: [String]
        let targets: [String]

        init(sentinel: String) {
            let long = String(repeating: "n", count: 150)
            names = [
                "VERSION", "bin/cascade-agent", "bin/new", "lib/x", "d/l1", "d/l1/x", "l2", "current", "current/x",
                "a//b", "./c", "d/./e/f", "\(long)/f", "share/\(long)", "x/y/z/w",
                "../x", "d/../../x", "/\(sentinel.dropFirst())/abs", "\(sentinel)/abs2", "..", ".", "", "./",
                String(repeating: "a/", count: 60) + "f", String(repeating: "z", count: 300),
            ]
            targets = [
                "bin", "bin/cascade-agent", "../bin", "VERSION", "d", "d/l1/bin", ".", "lib/..", "x/y",
                "..", "../..", "d/l1/..", "d/l1/../..", "current/..", "current/../..", "lib/agent/..", "l2/..",
                "d/x/../..", "d/l1/..\0", "x\0/../..", "/etc", "\(sentinel)", "../sentinel/l", "", "l2", "a", String(repeating: "../", count: 50),
                String(repeating: "d/l1/", count: 30), String(repeating: "x", count: 5000),
            ]
        }
    }

    // MARK: - Building archives

    static func template(_ rng: inout SplitMix64, _ words: Words) -> [Member] {
        func content() -> [UInt8] { rng.bytes(rng.below(700)) }
        /// A link to a target from the words, in the header or (as only pax can hold a NUL or
        /// more than 100 bytes) in a pax record.
        func link(_ path: String) -> Member {
            let target = rng.pick(words.targets)
            return rng.chance(50)
                ? Member(path: path, type: "2", mode: 0o777, link: target)
                : Member(path: path, type: "2", mode: 0o777, link: "placeholder", pax: UstarWriter.paxRecord("linkpath", target))
        }
        switch rng.below(4) {
        case 0:
            return [
                Member(path: "bin", type: "5", mode: 0o755),
                Member(path: "bin/cascade-agent", type: "0", mode: 0o755, content: content()),
                Member(path: "bin/cascade-upgrader", type: "0", mode: 0o755, content: content()),
                Member(path: "VERSION", type: "0", content: Array("1.2.3\n".utf8)),
                Member(path: "lib", type: "5", mode: 0o755),
                Member(path: "lib/agent", type: "2", mode: 0o777, link: "../bin/cascade-agent"),
                Member(path: "current", type: "2", mode: 0o777, link: "bin"),
            ]
        case 1:
            let long = "share/" + String(repeating: "p", count: 150)
            return [
                Member(path: "./", type: "5", mode: 0o755),
                Member(path: "PaxHeader", type: "0", content: content(), pax: UstarWriter.paxRecord("path", long)),
                Member(path: "share/l", type: "2", mode: 0o777, pax: UstarWriter.paxRecord("linkpath", "../VERSION")),
                Member(path: "VERSION", type: "0", content: Array("2.0\n".utf8)),
                Member(path: "././@LongLink", type: "0", content: content(), longName: Array(("doc/" + String(repeating: "q", count: 120)).utf8)),
                Member(path: "doc/l", type: "2", mode: 0o777, longLink: Array("../share".utf8)),
            ]
        case 2:
            // Links everywhere: chains through d/l1 (the release itself) and each other.
            return [
                Member(path: "d", type: "5", mode: 0o755),
                Member(path: "d/l1", type: "2", mode: 0o777, link: ".."),
                Member(path: "bin/tool", type: "0", mode: 0o755, content: content()),
                link("l2"),
                link("d/l3"),
                link("bin/l4"),
                Member(path: "VERSION", type: "0", content: Array("4.0\n".utf8)),
            ]
        default:
            return [
                Member(path: "d", type: "5", mode: 0o755),
                Member(path: "d/l1", type: "2", mode: 0o777, link: ".."),
                Member(path: "bin/tool", type: "0", mode: 0o755, content: content()),
                Member(path: "l2", type: "2", mode: 0o777, link: "d/l1/bin/tool"),
                Member(path: "d/e", type: "5", mode: 0o755),
                Member(path: "d/e/up", type: "2", mode: 0o777, link: "../../bin"),
                Member(path: "VERSION", type: "0", content: Array("3.0\n".utf8)),
            ]
        }
    }

    /// Pax record sets: valid ones, and every length and value shape a parser can trip on.
    static func paxRecords(_ rng: inout SplitMix64, _ words: Words) -> [UInt8] {
        switch rng.below(12) {
        case 0: return UstarWriter.paxRecord("path", rng.pick(words.names))
        case 1: return UstarWriter.paxRecord("linkpath", rng.pick(words.targets))
        case 2: return UstarWriter.paxRecord("size", rng.pick(["0", "5", "4097", "9223372036854775807", "99999999999999999999", "-1", "abc", "+3"]))
        case 3: return Array(rng.pick(["9223372036854775807 path=x\n", "9223372036854775800 a=b\n", "18446744073709551615 a=b\n"]).utf8)
        case 4: return UstarWriter.paxRecord("path", "ok") + Array("9223372036854775807 path=x\n".utf8)
        case 5: return Array(rng.pick(["5 path=x\n", "0 \n", "1", "3 \n", " 5 a=b\n", "12 path=abc", "-5 a=b\n", "2 \n"]).utf8)
        case 6: return UstarWriter.paxRecord("path", "ok") + UstarWriter.paxRecord("mtime", "1.5") + UstarWriter.paxRecord("size", "3")
        case 7: return rng.bytes(rng.below(64))
        case 8: return UstarWriter.paxRecord("uid", "0") + Array("00000000000000000000011 a=b\n".utf8)
        case 9: return []
        case 10: return Array(String(repeating: "9", count: 40).utf8) + Array(" a=b\n".utf8)
        default: return UstarWriter.paxRecord("comment", String(repeating: "c", count: rng.below(2000)))
        }
    }

    static func mutate(_ members: inout [Member], _ rng: inout SplitMix64, _ words: Words) {
        for _ in 0..<rng.below(4) {
            guard !members.isEmpty else { return }
            let index = rng.below(members.count)
            switch rng.below(13) {
            case 0: members[index].path = rng.pick(words.names)
            case 1:
                members[index].link = rng.pick(words.targets)
                if rng.chance(50) { members[index].type = "2" }
            case 2: members[index].type = rng.pick(["0", "1", "2", "3", "4", "5", "6", "7", "x", "g", "L", "K", "S", "D", "V", "M"])
            case 3: members[index].mode = rng.pick([0o4755, 0o2755, 0o1777, 0o7777, 0o755, 0o644, 0o777, 0o100644, 0o40755, 0o6000])
            case 4:
                let size = members[index].content.count
                members[index].declaredSize = rng.pick([0, max(0, size - 1), size + 1, size + 512, 4097, 1 << 20, 1 << 33, (1 << 33) - 1])
            case 5: members[index].pax = paxRecords(&rng, words)
            case 6:
                let text = rng.chance(50) ? rng.pick(words.names) : rng.pick(words.targets)
                let bytes = rng.chance(10) ? rng.bytes(rng.below(700)) : Array(text.utf8) + (rng.chance(50) ? [0] : [])
                if rng.chance(50) { members[index].longName = bytes } else { members[index].longLink = bytes }
            case 7: members.insert(members[index], at: rng.below(members.count + 1))
            case 8: members.swapAt(index, rng.below(members.count))
            case 9: members.remove(at: index)
            case 10: members[index].content = rng.bytes(rng.pick([0, 1, 511, 512, 513, 3000, 4096, 5000]))
            case 11:
                members.insert(Member(path: rng.pick(words.names), type: "2", mode: 0o777, link: rng.pick(words.targets)),
                               at: rng.below(members.count + 1))
            default:
                members.insert(Member(path: rng.pick(words.names), type: rng.pick(["0", "5"]), mode: 0o644, content: rng.bytes(rng.below(40))),
                               at: rng.below(members.count + 1))
            }
        }
    }

    static func serialise(_ members: [Member]) -> UstarWriter {
        var tar = UstarWriter()
        for member in members {
            if let pax = member.pax { tar.entry("PaxHeader", type: "x", mode: 0o644, content: pax) }
            if let name = member.longName { tar.entry("././@LongLink", type: "L", mode: 0o644, content: name) }
            if let link = member.longLink { tar.entry("././@LongLink", type: "K", mode: 0o644, content: link) }
            tar.entry(member.path, type: member.type, mode: member.mode, content: member.content, link: member.link, declaredSize: member.declaredSize)
        }
        return tar
    }

    /// Byte-level changes to header fields, with the checksum usually rewritten so the change
    /// reaches the field's parser rather than stopping at the checksum.
    static func mutateHeaders(_ tar: inout UstarWriter, _ rng: inout SplitMix64) {
        guard !tar.headerOffsets.isEmpty else { return }
        for _ in 0..<rng.below(3) {
            let header = rng.below(tar.headerOffsets.count)
            let numeric: [(Int, Int)] = [(100, 8), (108, 8), (116, 8), (124, 12), (136, 12), (148, 8)]
            let (offset, length) = rng.pick(numeric)
            let value: [UInt8]
            switch rng.below(8) {
            case 0: value = [0x80] + [UInt8](repeating: 0, count: length - 2) + [UInt8(truncatingIfNeeded: rng.next())]
            case 1: value = [0x80] + rng.bytes(length - 1)
            case 2: value = [UInt8](repeating: 0xff, count: length)
            case 3: value = [rng.pick([0x80, 0xbf, 0xc0, 0xfe])] + [UInt8](repeating: 0xff, count: length - 1)
            case 4: value = Array(String(repeating: "7", count: length).utf8)
            case 5: value = Array(rng.pick(["8", " 1 2", "\0\0\07", "-1", "0x10", "       "]).utf8)
            case 6: value = [0x80]
            default: value = rng.bytes(1 + rng.below(4))
            }
            let at = rng.chance(80) ? offset : rng.below(512)
            let fix = rng.chance(90)
            tar.patch(header: header, at: at, value, fixChecksum: fix && at != 148)
            if rng.chance(5) {
                // The checksum itself in base-256, right or off by one.
                let sum = UstarWriter.checksum(tar.bytes, header: tar.headerOffsets[header]) + rng.below(2)
                tar.patch(header: header, at: 148, [0x80, 0, 0, 0, 0, 0, UInt8(sum >> 8), UInt8(sum & 0xff)], fixChecksum: false)
            }
        }
        if rng.chance(10) { tar.patch(header: rng.below(tar.headerOffsets.count), at: 156, [UInt8(truncatingIfNeeded: rng.next())]) }
    }

    static func archive(_ rng: inout SplitMix64, _ words: Words) -> [UInt8] {
        var members = template(&rng, words)
        mutate(&members, &rng, words)
        var tar = serialise(members)
        mutateHeaders(&tar, &rng)
        var bytes = tar.finished()
        switch rng.below(40) {
        case 0: bytes.removeLast(rng.below(bytes.count))
        case 1: bytes.removeLast(1024)
        case 2: bytes += rng.bytes(512)
        case 3: bytes.insert(contentsOf: bytes[0..<512], at: bytes.count - 1024)
        default: break
        }
        return bytes
    }

    // MARK: - The run

    /// What a refusal was about, from its message, to show the fuzz reaches each check.
    static func category(_ error: InstallError) -> String {
        let kinds = [
            "points outside", "too many links", "pax", "malformed", "base-256", "too large", "bad checksum",
            "not a ustar", "hard link", "device", "FIFO", "unknown type", "setuid", "over the limit",
            "more than", "climbs out", "absolute path", "empty path", "truncated", "end-of-archive",
            "goes through a link", "twice", "cannot create", "negative", "overlong", "NUL byte",
        ]
        return kinds.first { error.message.contains($0) } ?? "other: \(error.message.prefix(60))"
    }

    /// The read end of a pipe already holding `bytes` and closed for writing.
    static func pipeHolding(_ bytes: [UInt8]) throws -> Int32 {
        var ends: [Int32] = [0, 0]
        guard Posix.makePipe(&ends) == 0 else { throw TestFailure("pipe failed: \(Posix.lastError)") }
        defer { close(ends[1]) }
        // Archives stay well under 1 MiB, the largest pipe an unprivileged process may ask for.
        // F_SETPIPE_SZ (1031) needs _GNU_SOURCE, which Swift's Glibc module does not define.
        let setPipeSize: Int32 = 1031
        let fits = bytes.count <= 60_000 || (bytes.count <= 1 << 20 && fcntl(ends[1], setPipeSize, 1 << 20) >= 0)
        guard fits else {
            close(ends[0])
            throw TestFailure("an archive of \(bytes.count) bytes does not fit a pipe")
        }
        let written = bytes.withUnsafeBytes { write(ends[1], $0.baseAddress, $0.count) }
        guard written == bytes.count else {
            close(ends[0])
            throw TestFailure("writing \(bytes.count) bytes to a pipe wrote \(written)")
        }
        return ends[0]
    }

    /// What one worker saw.
    struct Tally: Sendable {
        var unpacked = 0
        var refusals: [String: Int] = [:]
        var codes: [String: Int] = [:]
        var failures: [String] = []
    }

    /// Archive `number` is made from its own PRNG stream, so any one can be rebuilt alone.
    static func archive(number: Int, _ words: Words) -> [UInt8] {
        var rng = SplitMix64(seed: seed ^ (UInt64(number) &* 0x9e37_79b9_7f4a_7c15))
        return archive(&rng, words)
    }

    /// Unpacks the archives `worker`, `worker + workers`, ... in a sandbox of its own.
    static func run(worker: Int, of workers: Int) -> Tally {
        var tally = Tally()
        let sandbox: BundleSandbox
        do { sandbox = try BundleSandbox(inMemory: true) } catch {
            tally.failures.append("worker \(worker) has no sandbox: \(error)")
            return tally
        }
        let words = Words(sentinel: sandbox.sentinel)
        for number in stride(from: worker, to: archives, by: workers) {
            let bytes = archive(number: number, words)
            var problems: [String] = []
            do {
                // Through a pipe that holds the whole archive: no file to rewrite, no writer thread.
                let fd = try pipeHolding(bytes)
                defer { close(fd) }
                do {
                    try BundleUnpacker.unpackTar(fd: fd, name: "archive \(number)", to: sandbox.release, limits: limits, syncFiles: false)
                    tally.unpacked += 1
                    problems += BundleSandbox.treeProblems(sandbox.release)
                } catch {
                    tally.refusals[category(error), default: 0] += 1
                    tally.codes[error.code.name, default: 0] += 1
                    if Posix.fileType(sandbox.release) != nil { problems.append("refused (\(error)) but left the release behind") }
                }
            } catch {
                problems.append("\(error)")
            }
            problems += sandbox.strayPaths().map { "wrote \($0)" }
            if !problems.isEmpty {
                tally.failures.append("archive \(number) (seed \(seed)): \(problems.joined(separator: "; "))")
                for path in sandbox.strayPaths() { Posix.removeTree(path) }
                if tally.failures.count >= 20 { break }
            }
            Posix.removeTree(sandbox.release)
        }
        return tally
    }

    @Test("100,000 mutated bundles: each unpacks wholly inside the release or is refused, never writing outside",
          .timeLimit(.minutes(3)))
    func mutatedBundles() {
        // Two workers when there are two cores: `make test` runs suites one at a time, so the
        // second core is otherwise idle. Which worker takes an archive changes no result.
        let workers = min(2, max(1, ProcessInfo.processInfo.activeProcessorCount))
        let tallies = Mutex<[Tally]>([])
        let clock = ContinuousClock()
        let started = clock.now
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            let tally = Self.run(worker: worker, of: workers)
            tallies.withLock { $0.append(tally) }
        }
        let elapsed = clock.now - started
        var total = Tally()
        for tally in tallies.withLock({ $0 }) {
            total.unpacked += tally.unpacked
            total.refusals.merge(tally.refusals, uniquingKeysWith: +)
            total.codes.merge(tally.codes, uniquingKeysWith: +)
            total.failures += tally.failures
        }
        for failure in total.failures { Issue.record("\(failure)") }
        let refused = total.refusals.values.reduce(0, +)
        print("bundle fuzz: \(Self.archives) archives in \(elapsed) on \(workers) workers, \(total.unpacked) unpacked, \(refused) refused; codes \(total.codes.sorted { $0.key < $1.key })")
        for (kind, count) in total.refusals.sorted(by: { $0.value > $1.value }) { print("  refused, \(kind): \(count)") }
        // Each failure is an issue above; without any, every archive had one of the two outcomes.
        if total.failures.isEmpty { #expect(total.unpacked + refused == Self.archives) }
        // Both outcomes must be common, or the fuzz proves little.
        #expect(total.unpacked >= Self.archives / 10, "only \(total.unpacked) archives unpacked")
        #expect(refused >= Self.archives / 10, "only \(refused) archives refused")
        // And the refusals must reach the checks this fuzz is for, not stop at one.
        let kinds = [
            "points outside", "too many links", "NUL byte", "malformed", "pax", "base-256", "bad checksum", "hard link",
            "device", "FIFO", "setuid", "over the limit", "climbs out", "absolute path", "truncated", "goes through a link",
        ]
        for kind in kinds {
            #expect(total.refusals[kind, default: 0] >= Self.archives / 1000, "only \(total.refusals[kind, default: 0]) refusals were \"\(kind)\"")
        }
    }
}
