/// Rules for the strings an agent fills in (services.md §3.1), applied where they enter the
/// coordinator: an agent may be hostile, and what it writes reaches operators' terminals, logs
/// and the status page. Identifiers are checked against their grammar and refused when they
/// break it; free text (errors, fault details) is kept, shortened and made printable.
public enum AgentText {
    /// Longest free text kept from an agent (an error, a fault detail), in bytes.
    public static let maxFreeText = 1024

    /// A host name as RFC 1123 allows: dot-separated labels of letters, digits and hyphens,
    /// 1–63 bytes each, not starting or ending with a hyphen; 253 bytes in all.
    public static func isValidHostname(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty, bytes.count <= 253 else { return false }
        let labels = bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        return labels.allSatisfy { label in
            guard (1...63).contains(label.count), label.first != UInt8(ascii: "-"), label.last != UInt8(ascii: "-") else { return false }
            return label.allSatisfy { byte in
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-")
            }
        }
    }

    /// Free text as the coordinator keeps it: at most `limit` bytes (cut at a character), with
    /// every control character (C0 but tab, DEL, C1) replaced by U+FFFD, so no later view can
    /// be driven by it whatever it forgets to escape.
    public static func freeText(_ text: String, limit: Int = maxFreeText) -> String {
        var result = ""
        var bytes = 0
        for character in text {
            let cleaned: String = character.unicodeScalars.contains(where: isControl) ? "\u{FFFD}" : String(character)
            bytes += cleaned.utf8.count
            guard bytes <= limit else { break }
            result += cleaned
        }
        return result
    }

    /// A version an agent reports: empty (not known), or one of services.md §4.4's grammar.
    public static func isAcceptableVersion(_ text: String) -> Bool {
        text.isEmpty || (try? ReleaseVersion(text)) != nil
    }

    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        (scalar.value < 0x20 && scalar != "\t") || (0x7F...0x9F).contains(scalar.value)
    }
}
