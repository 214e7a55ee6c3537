/// Who is on the other end of a connection, read only from its verified certificate's
/// SAN URI `cascade://<role>/<id>` — never from anything the peer says.
public struct PeerIdentity: Hashable, Sendable, CustomStringConvertible {
    public enum Role: String, Sendable, CaseIterable {
        case coordinator, agent, `operator`
    }

    public let role: Role
    public let id: String

    public init(role: Role, id: String) throws(TLSError) {
        guard Self.isValidID(id) else {
            throw TLSError(.identity, "\"\(id)\" is not a valid id (1-64 of A-Z a-z 0-9 . _ -)")
        }
        self.role = role
        self.id = id
    }

    /// Parses `cascade://<role>/<id>`.
    public init(uri: String) throws(TLSError) {
        let prefix = "cascade://"
        guard uri.hasPrefix(prefix) else {
            throw TLSError(.identity, "\"\(uri)\" is not a cascade:// URI")
        }
        let parts = uri.dropFirst(prefix.count).split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let role = Role(rawValue: String(parts[0])) else {
            throw TLSError(.identity, "\"\(uri)\" is not cascade://<coordinator|agent|operator>/<id>")
        }
        try self.init(role: role, id: String(parts[1]))
    }

    public var uri: String { "cascade://\(role.rawValue)/\(id)" }
    public var description: String { "\(role.rawValue) \(id)" }

    public static func isValidID(_ id: String) -> Bool {
        let bytes = Array(id.utf8)
        guard (1...64).contains(bytes.count) else { return false }
        return bytes.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
                return true
            default:
                return false
            }
        }
    }
}
