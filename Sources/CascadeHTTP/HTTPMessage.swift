public import CascadeNet

/// A request as the server read it: its line and headers (GET has no body worth reading).
public struct HTTPRequest: Sendable {
    public var method: String
    /// The request target as sent ("/metrics?x=1").
    public var target: String
    /// The target without its query.
    public var path: String
    public var version: String
    /// Header names lowercased, in arrival order.
    public var headers: [(name: String, value: String)]
    public var remote: SocketAddress?

    public func header(_ name: String) -> String? {
        let wanted = name.lowercased()
        return headers.first { $0.name == wanted }?.value
    }
}

/// A response: status, headers and the whole body (`Content-Length` and `Connection: close`
/// are added when it is written).
public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public init(status: Int, headers: [(name: String, value: String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public init(status: Int, contentType: String, body: String, headers: [(name: String, value: String)] = []) {
        self.init(status: status, headers: [("Content-Type", contentType)] + headers, body: Array(body.utf8))
    }

    /// A short plain-text answer (errors).
    public static func text(_ status: Int, _ message: String, headers: [(name: String, value: String)] = []) -> HTTPResponse {
        HTTPResponse(status: status, contentType: "text/plain; charset=utf-8", body: message + "\n", headers: headers)
    }

    /// Headers every response carries: nothing is cached, nothing is sniffed, nothing frames it.
    static let common: [(name: String, value: String)] = [
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("X-Frame-Options", "DENY"),
        ("Connection", "close"),
    ]

    /// Status line, headers and body, as sent.
    func serialized(includeBody: Bool = true) -> [UInt8] {
        var head = "HTTP/1.1 \(status) \(Self.reason(status))\r\n"
        for (name, value) in headers { head += "\(name): \(Self.headerSafe(value))\r\n" }
        for (name, value) in Self.common where !headers.contains(where: { $0.name.lowercased() == name.lowercased() }) {
            head += "\(name): \(value)\r\n"
        }
        head += "Content-Length: \(body.count)\r\n\r\n"
        return Array(head.utf8) + (includeBody ? body : [])
    }

    /// A header value cannot end the header early: CR and LF (and other controls) become spaces.
    static func headerSafe(_ value: String) -> String {
        String(String.UnicodeScalarView(value.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? " " : $0 }))
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 400: "Bad Request"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 408: "Request Timeout"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 503: "Service Unavailable"
        case 505: "HTTP Version Not Supported"
        default: "Status"
        }
    }
}

/// Reads a request head (request line and headers) from bytes as they arrive.
struct RequestHeadParser {
    enum Failure: Error, Equatable {
        case tooLarge, malformed(String), unsupportedVersion(String)
    }

    let maxBytes: Int
    private(set) var buffer: [UInt8] = []

    init(maxBytes: Int) {
        self.maxBytes = maxBytes
    }

    /// Adds bytes; returns the head once the blank line that ends it has arrived.
    mutating func feed(_ bytes: [UInt8]) throws(Failure) -> (line: String, headers: [(name: String, value: String)])? {
        let searchFrom = max(0, buffer.count - 3)
        buffer += bytes
        guard let end = Self.endOfHead(buffer, from: searchFrom) else {
            if buffer.count > maxBytes { throw .tooLarge }
            return nil
        }
        guard end <= maxBytes else { throw .tooLarge }
        return try Self.parse(buffer[..<end])
    }

    /// The index just past CRLF CRLF (or LF LF, which RFC 9112 §2.2 lets a server accept).
    static func endOfHead(_ bytes: [UInt8], from start: Int) -> Int? {
        var index = start
        while index < bytes.count {
            if bytes[index] == 0x0A {
                if index + 1 < bytes.count, bytes[index + 1] == 0x0A { return index + 2 }
                if index + 2 < bytes.count, bytes[index + 1] == 0x0D, bytes[index + 2] == 0x0A { return index + 3 }
            }
            index += 1
        }
        return nil
    }

    static func parse(_ head: ArraySlice<UInt8>) throws(Failure) -> (line: String, headers: [(name: String, value: String)]) {
        // Request heads are ASCII; anything else is not a request we serve.
        guard head.allSatisfy({ $0 == 0x09 || $0 == 0x0A || $0 == 0x0D || (0x20..<0x7F).contains($0) }) else {
            throw .malformed("the request head is not ASCII text")
        }
        // Split on bytes: in a Swift String "\r\n" is one Character, not two.
        let lines = head.split(separator: 0x0A, omittingEmptySubsequences: false).map { line in
            Substring(String(decoding: line.last == 0x0D ? line.dropLast() : line, as: UTF8.self))
        }
        guard let line = lines.first, !line.isEmpty else { throw .malformed("no request line") }
        var headers: [(name: String, value: String)] = []
        for header in lines.dropFirst() where !header.isEmpty {
            guard let colon = header.firstIndex(of: ":"), colon != header.startIndex,
                  !header[..<colon].contains(where: { $0 == " " || $0 == "\t" })
            else { throw .malformed("a header line is not \"name: value\"") }
            headers.append((header[..<colon].lowercased(), trimmed(header[header.index(after: colon)...])))
        }
        return (String(line), headers)
    }

    /// Without leading and trailing spaces and tabs.
    static func trimmed(_ text: Substring) -> String {
        let blank: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = text.firstIndex(where: { !blank($0) }), let last = text.lastIndex(where: { !blank($0) }) else { return "" }
        return String(text[first...last])
    }

    /// "GET /path HTTP/1.1" → its three parts.
    static func requestLine(_ line: String) throws(Failure) -> (method: String, target: String, version: String) {
        let parts = line.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty else {
            throw .malformed("the request line is not \"METHOD TARGET HTTP/1.1\"")
        }
        guard parts[2].hasPrefix("HTTP/") else { throw .malformed("the request line has no HTTP version") }
        guard parts[2] == "HTTP/1.1" || parts[2] == "HTTP/1.0" else { throw .unsupportedVersion(String(parts[2])) }
        return (String(parts[0]), String(parts[1]), String(parts[2]))
    }
}
