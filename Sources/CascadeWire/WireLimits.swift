/// Fixed protocol limits from wire.md §9 that are not negotiable settings.
public enum WireLimits {
    /// Bytes in a frame header: length(4) type(1) flags(1) stream id(4).
    public static let frameHeaderSize = 10
    /// Bytes in the connection preface: magic(8) major(2) minor(2).
    public static let prefaceSize = 12
    public static let maxSettingsEntries = 32
    public static let maxGoawayReasonBytes = 1024
    /// Deepest nesting a recursive message decoder accepts (top level = 1).
    public static let maxMessageDepth = 32
    /// Largest flow-control window and largest WINDOW_UPDATE increment.
    public static let maxWindow: UInt32 = 0x7FFF_FFFF
    /// Stream ids are 31 bits; the high bit is reserved.
    public static let maxStreamID: UInt32 = 0x7FFF_FFFF
    public static let reservedBit: UInt32 = 0x8000_0000
    public static let maxFieldNumber = 536_870_911  // 2^29 - 1
}
