/// A small ustar writer for test bundles, including hostile ones no real `tar` would write.
public struct UstarWriter {
    public private(set) var bytes: [UInt8] = []
    /// Where each header starts in `bytes`, in order (for patching fields afterwards).
    public private(set) var headerOffsets: [Int] = []

    public init() {}

    public mutating func file(_ path: String, _ content: [UInt8], mode: UInt32 = 0o644) {
        entry(path, type: "0", mode: mode, content: content)
    }

    public mutating func file(_ path: String, _ text: String) {
        file(path, Array(text.utf8))
    }

    public mutating func directory(_ path: String) {
        entry(path, type: "5", mode: 0o755)
    }

    public mutating func symlink(_ path: String, to target: String) {
        entry(path, type: "2", mode: 0o777, link: target)
    }

    public mutating func hardLink(_ path: String, to target: String) {
        entry(path, type: "1", mode: 0o644, link: target)
    }

    public mutating func characterDevice(_ path: String) {
        entry(path, type: "3", mode: 0o644)
    }

    /// A pax extended header (`x`) holding `records`, each with its correct length prefix.
    public mutating func pax(_ records: [(String, String)]) {
        entry("PaxHeader", type: "x", mode: 0o644, content: records.flatMap { Self.paxRecord($0.0, $0.1) })
    }

    /// One pax record, "<length> <key>=<value>\n", the length counting itself.
    public static func paxRecord(_ key: String, _ value: String) -> [UInt8] {
        let body = " \(key)=\(value)\n".utf8.count
        var length = body + 1
        while String(length).utf8.count + body != length { length = String(length).utf8.count + body }
        return Array("\(length) \(key)=\(value)\n".utf8)
    }

    /// Overwrites `value.count` bytes at `offset` of the header at `headerOffsets[index]`, then
    /// rewrites its checksum unless told not to (so the change reaches the field's parser).
    public mutating func patch(header index: Int, at offset: Int, _ value: [UInt8], fixChecksum: Bool = true) {
        let start = headerOffsets[index]
        for (position, byte) in value.enumerated() where offset + position < 512 { bytes[start + offset + position] = byte }
        if fixChecksum { Self.fixChecksum(&bytes, header: start) }
    }

    /// Rewrites the checksum of the header at `start` in `archive`, as octal.
    public static func fixChecksum(_ archive: inout [UInt8], header start: Int) {
        let sum = checksum(archive, header: start)
        let text = Array(String(sum, radix: 8).utf8)
        let field = [UInt8](repeating: UInt8(ascii: "0"), count: max(0, 6 - text.count)) + text + [0, UInt8(ascii: " ")]
        for (position, byte) in field.prefix(8).enumerated() { archive[start + 148 + position] = byte }
    }

    /// The unsigned checksum of the header at `start`, its checksum field counted as spaces.
    public static func checksum(_ archive: [UInt8], header start: Int) -> Int {
        // An index loop: the bundle fuzz test computes this for every header it writes.
        archive.withUnsafeBufferPointer { bytes in
            var sum = 0
            var index = 0
            while index < 512 {
                sum += index >= 148 && index < 156 ? 32 : Int(bytes[start + index])
                index += 1
            }
            return sum
        }
    }

    /// A header whose size field says `declaredSize` whatever content follows (for truncation).
    public mutating func entry(
        _ path: String, type: Character, mode: UInt32, content: [UInt8] = [], link: String = "",
        declaredSize: Int? = nil, corruptChecksum: Bool = false
    ) {
        var header = [UInt8](repeating: 0, count: 512)
        headerOffsets.append(bytes.count)
        put(&header, 0, 100, Array(path.utf8))
        put(&header, 100, 8, octal(Int(mode), 7))
        put(&header, 108, 8, octal(0, 7))
        put(&header, 116, 8, octal(0, 7))
        put(&header, 124, 12, octal(declaredSize ?? content.count, 11))
        put(&header, 136, 12, octal(1_700_000_000, 11))
        header[156] = type.asciiValue!
        put(&header, 157, 100, Array(link.utf8))
        put(&header, 257, 6, Array("ustar\0".utf8))
        put(&header, 263, 2, Array("00".utf8))
        put(&header, 265, 32, Array("root".utf8))
        put(&header, 297, 32, Array("root".utf8))
        for index in 148..<156 { header[index] = UInt8(ascii: " ") }
        var sum = Self.checksum(header, header: 0)
        if corruptChecksum { sum += 1 }
        put(&header, 148, 8, octal(sum, 6) + [0, UInt8(ascii: " ")])
        bytes += header
        bytes += content
        bytes += [UInt8](repeating: 0, count: (512 - content.count % 512) % 512)
    }

    /// The archive with its end-of-archive marker.
    public func finished() -> [UInt8] {
        bytes + [UInt8](repeating: 0, count: 1024)
    }

    /// `value` in octal, zero-padded to at least `digits` digits, then a NUL.
    private func octal(_ value: Int, _ digits: Int) -> [UInt8] {
        var out: [UInt8] = [0]
        var rest = max(0, value)
        repeat {
            out.append(UInt8(ascii: "0") + UInt8(rest & 7))
            rest >>= 3
        } while rest > 0 || out.count <= digits
        return out.reversed()
    }

    private func put(_ header: inout [UInt8], _ offset: Int, _ length: Int, _ value: [UInt8]) {
        let count = min(length, value.count)
        header.replaceSubrange(offset..<(offset + count), with: value[0..<count])
    }
}
