/// Protocol version exchanged in the connection preface.
public struct ProtocolVersion: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var major: UInt16
    public var minor: UInt16

    public init(major: UInt16, minor: UInt16) {
        self.major = major
        self.minor = minor
    }

    /// The version this implementation speaks.
    public static let current = ProtocolVersion(major: 1, minor: 0)

    public static func < (a: ProtocolVersion, b: ProtocolVersion) -> Bool {
        (a.major, a.minor) < (b.major, b.minor)
    }

    public var description: String { "\(major).\(minor)" }
}

/// The 12-byte connection preface both sides send first (wire.md §3).
public enum Preface {
    /// "CASC\r\n\x1a\n": the CR LF, ^Z and LF catch text-mode and line-ending mangling.
    public static let magic: [UInt8] = [0x43, 0x41, 0x53, 0x43, 0x0D, 0x0A, 0x1A, 0x0A]
    public static let size = WireLimits.prefaceSize

    public static func encode(version: ProtocolVersion = .current, into bytes: inout [UInt8]) {
        bytes.append(contentsOf: magic)
        bytes.appendBE16(version.major)
        bytes.appendBE16(version.minor)
    }

    public static func encoded(version: ProtocolVersion = .current) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(size)
        encode(version: version, into: &bytes)
        return bytes
    }

    /// Parses a preface from the start of `bytes`.
    ///
    /// Returns nil while fewer than 12 bytes are available, but checks magic
    /// bytes as soon as they arrive so a non-Cascade peer is rejected early.
    /// On success exactly `Preface.size` bytes belong to the preface.
    /// Throws `bad-magic` or `unsupported-version` (any minor of `supportedMajor` is fine).
    public static func parse<C: Collection>(
        _ bytes: C, supportedMajor: UInt16 = ProtocolVersion.current.major
    ) throws(WireError) -> ProtocolVersion? where C.Element == UInt8 {
        var position = 0
        var versionBits: UInt32 = 0
        var index = bytes.startIndex
        while position < size, index != bytes.endIndex {
            let byte = bytes[index]
            if position < magic.count {
                guard byte == magic[position] else { throw badMagic(at: position, found: byte) }
            } else {
                versionBits = versionBits << 8 | UInt32(byte)
            }
            position += 1
            index = bytes.index(after: index)
        }
        guard position == size else { return nil }
        let version = ProtocolVersion(major: UInt16(truncatingIfNeeded: versionBits >> 16),
                                      minor: UInt16(truncatingIfNeeded: versionBits))
        guard version.major == supportedMajor else {
            throw WireError(.unsupportedVersion, code: .unsupportedVersion,
                            "peer speaks protocol version \(version) but this endpoint supports only \(supportedMajor).x")
        }
        return version
    }

    private static func badMagic(at position: Int, found: UInt8) -> WireError {
        // PROTOCOL_ERROR is nominal: nothing is sent, the connection is just closed.
        WireError(.badMagic, code: .protocolError,
                  "connection preface byte \(position) is \(hexByte(found)) instead of \(hexByte(magic[position])), so the peer is not speaking Cascade or the stream was altered in transit")
    }
}

func hexByte(_ byte: UInt8) -> String {
    let digits = String(byte, radix: 16, uppercase: true)
    return "0x" + (digits.count == 1 ? "0" + digits : digits)
}
