#if canImport(Glibc)
import Glibc
#endif

/// One member of a tar archive, as its header (plus any pax or GNU long-name records) says.
public struct TarEntry: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case file
        case directory
        case symlink(target: String)
        case hardLink(target: String)
        /// Device, FIFO or an unknown type flag (the raw flag byte).
        case special(UInt8)
    }

    public let path: String
    public let kind: Kind
    /// The permission bits (set-id and sticky bits included); any file-type bits are dropped.
    public let mode: UInt32
    /// Bytes of content that follow the header (only files carry content we keep).
    public let size: Int64
}

/// A streaming reader of POSIX ustar archives (with pax `x`/`g` headers and GNU `L`/`K` long
/// names, which common `tar` tools write). It reads from a file descriptor so a bundle is never
/// held in memory; the caller decides what is safe to unpack.
public final class TarReader {
    private static let block = 512
    /// pax and GNU long-name records are small; anything bigger is hostile. The bound holds for
    /// all the records in front of one entry together, so a stream of them cannot run on.
    private static let metadataLimit: Int64 = 64 * 1024
    /// Real archives put at most a pax header and two long-name records in front of an entry.
    private static let metadataHeaderLimit = 8

    private let fd: Int32
    private let name: String
    private var pendingContent: Int64 = 0
    private var pendingPadding: Int64 = 0
    /// Reused for content and skipping, so a stream of small entries allocates nothing per entry.
    private var buffer: [UInt8] = []

    /// Reads from `fd` (not owned: the caller closes it); `name` appears in errors.
    public init(fd: Int32, name: String) {
        self.fd = fd
        self.name = name
    }

    /// The next entry, or nil at the end-of-archive marker.
    public func next() throws(InstallError) -> TarEntry? {
        try skip(pendingContent)
        try skip(pendingPadding)
        pendingContent = 0
        pendingPadding = 0
        var longPath: String?
        var longLink: String?
        var paxSize: Int64?
        var metadataHeaders = 0
        var metadataBytes: Int64 = 0
        while true {
            guard let header = try readExactly(Self.block, allowEOF: true) else {
                throw InstallError(.unsafeBundle, "\(name) ends without a tar end-of-archive marker")
            }
            if !header.contains(where: { $0 != 0 }) { return nil }
            try verifyChecksum(header)
            guard header[257..<262].elementsEqual("ustar".utf8) else {
                throw InstallError(.unsafeBundle, "\(name) is not a ustar tar archive")
            }
            let flag = header[156]
            let size = try number(header, 124, 12)
            guard size >= 0 else { throw InstallError(.unsafeBundle, "\(name) has an entry with a negative size") }
            if [UInt8(ascii: "x"), UInt8(ascii: "g"), UInt8(ascii: "L"), UInt8(ascii: "K")].contains(flag) {
                metadataHeaders += 1
                metadataBytes += min(size, Self.metadataLimit + 1)
                guard metadataHeaders <= Self.metadataHeaderLimit, metadataBytes <= Self.metadataLimit else {
                    throw InstallError(.unsafeBundle, "\(name) has more pax or long-name records in front of one entry than a tar tool writes")
                }
            }
            switch flag {
            case UInt8(ascii: "x"), UInt8(ascii: "g"):
                let records = try metadata(size)
                if flag == UInt8(ascii: "x") {
                    let fields = try parsePax(records)
                    if let path = fields["path"] { longPath = path }
                    if let link = fields["linkpath"] { longLink = link }
                    if let text = fields["size"] {
                        guard let value = Int64(text), value >= 0 else {
                            throw InstallError(.unsafeBundle, "\(name) has a pax size that is not a number")
                        }
                        paxSize = value
                    }
                }
                continue
            case UInt8(ascii: "L"):
                longPath = cString(try metadata(size)[...])
                continue
            case UInt8(ascii: "K"):
                longLink = cString(try metadata(size)[...])
                continue
            default:
                break
            }
            var path = longPath ?? cString(header[0..<100])
            if longPath == nil {
                let prefix = cString(header[345..<500])
                if !prefix.isEmpty { path = "\(prefix)/\(path)" }
            }
            let link = longLink ?? cString(header[157..<257])
            // Old tools also store the file-type bits here; the kind comes from the type flag.
            let mode = UInt32(truncatingIfNeeded: try number(header, 100, 8) & 0o7777)
            let contentSize = paxSize ?? size
            let kind: TarEntry.Kind
            switch flag {
            case 0, UInt8(ascii: "0"), UInt8(ascii: "7"): kind = .file
            case UInt8(ascii: "5"): kind = .directory
            case UInt8(ascii: "2"): kind = .symlink(target: link)
            case UInt8(ascii: "1"): kind = .hardLink(target: link)
            default: kind = .special(flag)
            }
            // Links and directories carry no content, whatever their size field says.
            let carried: Int64
            switch kind {
            case .file, .special: carried = contentSize
            default: carried = 0
            }
            pendingContent = carried
            // Computed from the remainder, so a size near Int64.max cannot overflow.
            pendingPadding = (Int64(Self.block) - carried % Int64(Self.block)) % Int64(Self.block)
            return TarEntry(path: path, kind: kind, mode: mode, size: carried)
        }
    }

    /// Streams the current entry's content to `sink` in chunks; call at most once per entry.
    public func readContent(_ sink: (UnsafeRawBufferPointer) throws(InstallError) -> Void) throws(InstallError) {
        reserveBuffer()
        while pendingContent > 0 {
            let want = Int(min(Int64(buffer.count), pendingContent))
            let got = try fill(&buffer, want)
            guard got == want else { throw truncated() }
            var failure: InstallError?
            buffer.withUnsafeBytes { raw in
                do throws(InstallError) { try sink(UnsafeRawBufferPointer(rebasing: raw[0..<got])) } catch { failure = error }
            }
            if let failure { throw failure }
            pendingContent -= Int64(got)
        }
    }

    // MARK: - Header fields

    private func verifyChecksum(_ header: [UInt8]) throws(InstallError) {
        let stored = try number(header, 148, 8)
        // A plain index loop: this runs for every header, and the enumerated() form is several
        // times slower in debug builds (which the bundle fuzz test runs 100,000 archives in).
        let (unsigned, signed) = header.withUnsafeBufferPointer { bytes in
            var unsigned: Int64 = 0
            var signed: Int64 = 0
            var index = 0
            while index < bytes.count {
                let value = index >= 148 && index < 156 ? UInt8(ascii: " ") : bytes[index]
                unsigned += Int64(value)
                signed += Int64(Int8(bitPattern: value))
                index += 1
            }
            return (unsigned, signed)
        }
        guard stored == unsigned || stored == signed else {
            throw InstallError(.unsafeBundle, "\(name) has a tar header with a bad checksum")
        }
    }

    /// An octal field (NUL/space padded), or GNU base-256 when the high bit of the first byte is
    /// set. Every step is checked: a field that does not fit a non-negative Int64 is refused.
    private func number(_ header: [UInt8], _ offset: Int, _ length: Int) throws(InstallError) -> Int64 {
        let field = header[offset..<(offset + length)]
        if let first = field.first, first & 0x80 != 0 {
            // 0x40 in the first byte is the sign of a negative number (GNU writes 0xff...) or a
            // value beyond 2^62 even in an 8-byte field: neither is a size, mode or checksum.
            guard first & 0x40 == 0 else {
                throw InstallError(.unsafeBundle, "\(name) has a negative or oversized base-256 tar number")
            }
            var value = Int64(first & 0x3f)
            for byte in field.dropFirst() {
                guard value <= Int64.max >> 8 else {
                    throw InstallError(.unsafeBundle, "\(name) has a tar number too large to handle")
                }
                value = value << 8 | Int64(byte)
            }
            return value
        }
        var value: Int64 = 0
        var seenDigit = false
        for byte in field {
            if byte == 0 || byte == UInt8(ascii: " ") {
                if seenDigit { break } else { continue }
            }
            guard (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(byte), value <= Int64.max >> 3 else {
                throw InstallError(.unsafeBundle, "\(name) has a tar header with a malformed number")
            }
            // value <= Int64.max >> 3, so value * 8 + 7 still fits.
            value = value * 8 + Int64(byte - UInt8(ascii: "0"))
            seenDigit = true
        }
        return value
    }

    private func cString(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }

    private func metadata(_ size: Int64) throws(InstallError) -> [UInt8] {
        guard size <= Self.metadataLimit else {
            throw InstallError(.unsafeBundle, "\(name) has a pax or long-name record of \(size) bytes")
        }
        let padded = Int((size + 511) / 512 * 512)
        guard let bytes = try readExactly(padded, allowEOF: false) else { throw truncated() }
        return Array(bytes.prefix(Int(size)))
    }

    /// pax records: "<length> <key>=<value>\n", the length counting the whole record.
    private func parsePax(_ bytes: [UInt8]) throws(InstallError) -> [String: String] {
        var fields: [String: String] = [:]
        var index = 0
        while index < bytes.count {
            // The length is compared with what is left, never added to the index unchecked, so a
            // length near Int.max is refused instead of overflowing; it must cover "<digits> " and "\n".
            guard let space = bytes[index...].firstIndex(of: UInt8(ascii: " ")), space - index <= 20,
                  let length = Int(String(decoding: bytes[index..<space], as: UTF8.self)),
                  length >= space - index + 2, length <= bytes.count - index, bytes[index + length - 1] == 0x0A
            else { throw InstallError(.unsafeBundle, "\(name) has a malformed pax header") }
            let record = bytes[(space + 1)..<(index + length - 1)]
            if let equals = record.firstIndex(of: UInt8(ascii: "=")) {
                fields[String(decoding: record[..<equals], as: UTF8.self)] =
                    String(decoding: record[(equals + 1)...], as: UTF8.self)
            }
            index += length
        }
        return fields
    }

    // MARK: - Reading

    private func truncated() -> InstallError {
        InstallError(.unsafeBundle, "\(name) is truncated: an entry is shorter than its header says")
    }

    private func skip(_ count: Int64) throws(InstallError) {
        var remaining = count
        if remaining > 0 { reserveBuffer() }
        while remaining > 0 {
            let want = Int(min(Int64(buffer.count), remaining))
            guard try fill(&buffer, want) == want else { throw truncated() }
            remaining -= Int64(want)
        }
    }

    private func reserveBuffer() {
        if buffer.isEmpty { buffer = [UInt8](repeating: 0, count: 64 * 1024) }
    }

    private func readExactly(_ count: Int, allowEOF: Bool) throws(InstallError) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: count)
        let got = try fill(&buffer, count)
        if got == 0 && allowEOF { return nil }
        guard got == count else { throw truncated() }
        return buffer
    }

    /// Reads up to `count` bytes into the start of `buffer`, stopping early only at end of file.
    private func fill(_ buffer: inout [UInt8], _ count: Int) throws(InstallError) -> Int {
        var got = 0
        while got < count {
            let result = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress! + got, count - got) }
            if result < 0 {
                if errno == EINTR { continue }
                throw InstallError(.io, "reading \(name) failed: \(Posix.lastError)")
            }
            if result == 0 { break }
            got += result
        }
        return got
    }
}
