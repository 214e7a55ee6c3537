/// A small ustar writer for test bundles, including hostile ones no real `tar` would write.
public struct UstarWriter {
    public private(set) var bytes: [UInt8] = []

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

    /// A header whose size field says `declaredSize` whatever content follows (for truncation).
    public mutating func entry(
        _ path: String, type: Character, mode: UInt32, content: [UInt8] = [], link: String = "",
        declaredSize: Int? = nil, corruptChecksum: Bool = false
    ) {
        var header = [UInt8](repeating: 0, count: 512)
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
        var sum = header.reduce(0) { $0 + Int($1) }
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

    private func octal(_ value: Int, _ digits: Int) -> [UInt8] {
        let text = String(value, radix: 8)
        return Array((String(repeating: "0", count: max(0, digits - text.count)) + text).utf8) + [0]
    }

    private func put(_ header: inout [UInt8], _ offset: Int, _ length: Int, _ value: [UInt8]) {
        for (index, byte) in value.prefix(length).enumerated() { header[offset + index] = byte }
    }
}
