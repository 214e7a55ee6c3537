#if canImport(Glibc)
import Glibc
#endif

/// How many leading bits of an address name its cluster. Defaults: IPv4 /24, IPv6 /64 — the
/// usual size of one rack or VLAN subnet, which is what the patent's "network segment" means.
public struct PrefixLengths: Hashable, Sendable {
    public let ipv4: Int
    public let ipv6: Int

    public static let `default` = PrefixLengths(validIPv4: 24, ipv6: 64)

    public init(ipv4: Int = 24, ipv6: Int = 64) throws(StoreError) {
        guard (0...32).contains(ipv4) else { throw StoreError(.invalidArgument, "an IPv4 prefix length must be 0...32, not \(ipv4)") }
        guard (0...128).contains(ipv6) else { throw StoreError(.invalidArgument, "an IPv6 prefix length must be 0...128, not \(ipv6)") }
        self.init(validIPv4: ipv4, ipv6: ipv6)
    }

    private init(validIPv4 ipv4: Int, ipv6: Int) {
        self.ipv4 = ipv4
        self.ipv6 = ipv6
    }
}

/// A subnet: the network bits of an address under a prefix length, with a canonical text form
/// ("127.0.1.0/24", "fd00:1:2:3::/64") that is the cluster's key in the database.
public struct SubnetPrefix: Hashable, Sendable, Comparable, CustomStringConvertible {
    public enum Family: Int, Hashable, Sendable { case ipv4 = 4, ipv6 = 6 }

    public let family: Family
    /// The network address with host bits zeroed: 4 or 16 bytes.
    public let network: [UInt8]
    public let length: Int

    /// The subnet `address` belongs to. IPv4-mapped IPv6 addresses (::ffff:a.b.c.d, as a
    /// dual-stack socket reports IPv4 peers) count as IPv4, so one host never lands in two
    /// clusters depending on how it connected. Brackets ("[fd00::1]") are accepted.
    public init(address: String, lengths: PrefixLengths = .default) throws(StoreError) {
        guard let (family, bytes) = SubnetPrefix.parse(address) else {
            throw StoreError(.invalidArgument, "'\(address)' is not an IPv4 or IPv6 address")
        }
        self.init(family: family, bytes: bytes, length: family == .ipv4 ? lengths.ipv4 : lengths.ipv6)
    }

    /// Parses a prefix as an operator writes it ("127.0.1.0/24", "fd00:1:2:3::/64", or
    /// "127.0.1.9/24", which names the same subnet); nil if it is not one.
    public init?(parsing text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let length = Int(parts[1]), let (family, bytes) = SubnetPrefix.parse(String(parts[0])) else {
            return nil
        }
        guard length >= 0, length <= bytes.count * 8 else { return nil }
        self.init(family: family, bytes: bytes, length: length)
    }

    private init(family: Family, bytes: [UInt8], length: Int) {
        var network = bytes
        for index in network.indices {
            let bitsKept = min(max(length - index * 8, 0), 8)
            network[index] &= bitsKept == 0 ? 0 : UInt8(truncatingIfNeeded: 0xFF << (8 - bitsKept))
        }
        self.family = family
        self.network = network
        self.length = length
    }

    public var description: String {
        "\(SubnetPrefix.format(network, family: family))/\(length)"
    }

    /// Orders IPv4 before IPv6, then by network bytes, then by length.
    public static func < (lhs: SubnetPrefix, rhs: SubnetPrefix) -> Bool {
        if lhs.family != rhs.family { return lhs.family.rawValue < rhs.family.rawValue }
        if lhs.network != rhs.network { return lhs.network.lexicographicallyPrecedes(rhs.network) }
        return lhs.length < rhs.length
    }

    /// Whether `address` lies in this subnet.
    public func contains(address: String) -> Bool {
        guard let (family, bytes) = SubnetPrefix.parse(address), family == self.family else { return false }
        return SubnetPrefix(family: family, bytes: bytes, length: length).network == network
    }

    // MARK: - Text

    private static func parse(_ text: String) -> (Family, [UInt8])? {
        var address = text
        if address.hasPrefix("["), address.hasSuffix("]") { address = String(address.dropFirst().dropLast()) }
        var v4 = in_addr()
        if inet_pton(AF_INET, address, &v4) == 1 {
            return (.ipv4, withUnsafeBytes(of: &v4) { Array($0) })
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, address, &v6) == 1 else { return nil }
        let bytes = withUnsafeBytes(of: &v6) { Array($0) }
        if bytes.prefix(10).allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF {
            return (.ipv4, Array(bytes[12...]))
        }
        return (.ipv6, bytes)
    }

    /// inet_ntop's form: dotted quad, or RFC 5952 lower-case IPv6 with the longest zero run as "::".
    private static func format(_ bytes: [UInt8], family: Family) -> String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let ok = bytes.withUnsafeBytes { raw in
            inet_ntop(family == .ipv4 ? AF_INET : AF_INET6, raw.baseAddress, &buffer, socklen_t(buffer.count)) != nil
        }
        precondition(ok, "inet_ntop cannot fail for a 4- or 16-byte address and a large enough buffer")
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
