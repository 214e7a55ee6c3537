/// The low 3 bits of a field key (wire.md §10.1). Values 3, 4, 6, 7 are invalid.
public enum WireType: UInt8, Sendable, Hashable, CustomStringConvertible {
    case varint = 0
    case fixed64 = 1
    case lengthDelimited = 2
    case fixed32 = 5

    public var description: String {
        switch self {
        case .varint: "VARINT"
        case .fixed64: "FIXED64"
        case .lengthDelimited: "LENGTH_DELIMITED"
        case .fixed32: "FIXED32"
        }
    }
}
