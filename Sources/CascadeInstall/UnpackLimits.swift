/// Bounds for unpacking a bundle: the bytes of file content one entry and all entries together
/// may hold, and the number of entries. The rule is the README's ("A release bundle is a tar
/// archive"): in the fleet flow both byte bounds are the signed manifest's size S for a plain
/// tar, and `gzipExpansion` × S for a gzip-compressed bundle; the local CLI uses `standard`.
public struct UnpackLimits: Sendable, Equatable {
    public var maxEntryBytes: Int64
    public var maxTotalBytes: Int64
    public var maxEntries: Int
    /// What the byte bounds are multiplied by when the bundle is gzip-compressed (1: unchanged).
    public var gzipExpansion: Int64

    public init(maxEntryBytes: Int64, maxTotalBytes: Int64, maxEntries: Int = 10_000, gzipExpansion: Int64 = 1) {
        self.maxEntryBytes = maxEntryBytes
        self.maxTotalBytes = maxTotalBytes
        self.maxEntries = maxEntries
        self.gzipExpansion = gzipExpansion
    }

    /// Fixed bounds for bundles given on the command line: 1 GiB per entry, 2 GiB in all.
    public static let standard = UnpackLimits(maxEntryBytes: 1 << 30, maxTotalBytes: 2 << 30)

    /// How many times its own size a gzip-compressed bundle may unpack to. Release binaries
    /// compress 2-4x; 8x leaves room for that and still bounds a gzip bomb.
    public static let signedGzipExpansion: Int64 = 8

    /// The bounds for a bundle whose signed manifest says it is `size` bytes. A plain tar's
    /// content is inside the archive, so S always suffices for an honest one.
    public static func signedBundle(size: UInt64) -> UnpackLimits {
        let bound = Int64(clamping: size)
        return UnpackLimits(maxEntryBytes: bound, maxTotalBytes: bound, gzipExpansion: signedGzipExpansion)
    }

    /// The bounds that apply to a gzip-compressed bundle (saturating rather than overflowing).
    var forGzip: UnpackLimits {
        var limits = self
        let factor = max(gzipExpansion, 1)
        limits.maxEntryBytes = Self.saturatingProduct(maxEntryBytes, factor)
        limits.maxTotalBytes = Self.saturatingProduct(maxTotalBytes, factor)
        return limits
    }

    private static func saturatingProduct(_ value: Int64, _ factor: Int64) -> Int64 {
        let (product, overflow) = value.multipliedReportingOverflow(by: factor)
        return overflow ? .max : product
    }
}
