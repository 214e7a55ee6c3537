/// Unsigned LEB128 varints and zigzag mapping (wire.md §10.2).
public enum Varint {
    /// A UInt64 never needs more than 10 bytes.
    public static let maxSize = 10

    public static func size(of value: UInt64) -> Int {
        value == 0 ? 1 : (64 - value.leadingZeroBitCount + 6) / 7
    }

    /// Appends the minimal encoding of `value`.
    public static func append(_ value: UInt64, to bytes: inout [UInt8]) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(truncatingIfNeeded: v))
    }

    /// Decodes the varint starting at `index` (an index into `bytes`) and
    /// advances `index` past it. Non-minimal encodings up to 10 bytes are
    /// accepted; a 10th byte above 1 would overflow 64 bits and is an error.
    public static func decode(_ bytes: ArraySlice<UInt8>, at index: inout Int) throws(WireError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        var i = index
        while true {
            guard i < bytes.endIndex else {
                throw WireError.malformed(.truncated,
                    "varint at offset \(index - bytes.startIndex) runs past the end of the \(bytes.count)-byte message")
            }
            let byte = bytes[i]
            i += 1
            if shift == 63 {
                guard byte <= 1 else {
                    throw WireError.malformed(.varintOverflow,
                        "varint at offset \(index - bytes.startIndex) does not fit in 64 bits (10th byte is \(hexByte(byte)))")
                }
                result |= UInt64(byte) << 63
                break
            }
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { break }
            shift += 7
        }
        index = i
        return result
    }

    /// Maps signed to unsigned so small magnitudes stay short: 0,-1,1,-2 → 0,1,2,3.
    public static func zigzag(_ value: Int64) -> UInt64 {
        UInt64(bitPattern: (value << 1) ^ (value >> 63))
    }

    public static func unzigzag(_ value: UInt64) -> Int64 {
        Int64(bitPattern: (value >> 1) ^ (0 &- (value & 1)))
    }
}
