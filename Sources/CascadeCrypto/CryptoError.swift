import COpenSSL

/// A failure in a cryptographic operation or in loading key material.
public struct CryptoError: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        public static let invalidKey = Code(name: "invalid key")
        public static let invalidSignature = Code(name: "invalid signature")
        public static let io = Code(name: "i/o")
        public static let openSSL = Code(name: "openssl")
        public var description: String { name }
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    /// Builds an error whose message ends with what OpenSSL queued (and clears the queue).
    static func openSSL(_ what: String, code: Code = .openSSL) -> CryptoError {
        let detail = OpenSSLErrors.drain()
        return CryptoError(code, detail.isEmpty ? what : "\(what): \(detail)")
    }
}

/// OpenSSL's thread-local error queue, read as text.
public enum OpenSSLErrors {
    /// Returns every queued error as one "; "-joined string and empties the queue.
    public static func drain() -> String {
        var parts: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            parts.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return parts.joined(separator: "; ")
    }

    /// Empties the queue so a later failure reports only its own cause.
    public static func clear() {
        ERR_clear_error()
    }
}
