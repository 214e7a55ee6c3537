public import CascadeNet
import Foundation

/// An HTTP/1.1 client for tests, on CascadeNet sockets: sends raw bytes (a well-formed GET or
/// anything abusive) and reads the answer until the server closes the connection.
public enum HTTPTestClient {
    public struct Response: Sendable {
        public var status: Int
        /// Header names lowercased.
        public var headers: [String: String]
        public var body: [UInt8]
        public var text: String { String(decoding: body, as: UTF8.self) }
    }

    /// `GET path` with a Host header; the whole answer.
    public static func get(_ address: SocketAddress, _ path: String, within limit: Duration = .seconds(10)) async throws -> Response {
        try await exchange(address, Array("GET \(path) HTTP/1.1\r\nHost: \(address)\r\nUser-Agent: cascade-tests\r\n\r\n".utf8), within: limit)
    }

    /// Sends `request` as it is and reads until the server closes; parses the answer.
    public static func exchange(_ address: SocketAddress, _ request: [UInt8], within limit: Duration = .seconds(10)) async throws -> Response {
        let loop = EventLoopGroup.shared.next()
        let bytes = try await withTimeout(limit, on: loop, what: "an HTTP exchange with \(address)") {
            let socket = try await Socket.connect(to: address, on: loop)
            defer { socket.close() }
            if !request.isEmpty { try await socket.write(request) }
            return try await readAll(socket)
        }
        return try parse(bytes)
    }

    /// Reads until end of stream (the server's close), tolerating a reset after the answer.
    public static func readAll(_ socket: Socket) async throws -> [UInt8] {
        var received: [UInt8] = []
        while true {
            let chunk: [UInt8]
            do {
                chunk = try await socket.read(maxLength: 65_536)
            } catch let error as NetError where error.code == .connectionReset && !received.isEmpty {
                return received
            }
            if chunk.isEmpty { return received }
            received += chunk
        }
    }

    public static func parse(_ bytes: [UInt8]) throws -> Response {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let end = (0..<max(0, bytes.count - 3)).first(where: { Array(bytes[$0..<$0 + 4]) == separator }) else {
            throw TestFailure("no HTTP response head in \(bytes.count) bytes: \(String(decoding: bytes.prefix(200), as: UTF8.self))")
        }
        let head = String(decoding: bytes[..<end], as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = head[0].split(separator: " ")
        guard statusParts.count >= 2, statusParts[0].hasPrefix("HTTP/1."), let status = Int(statusParts[1]) else {
            throw TestFailure("not an HTTP status line: \(head[0])")
        }
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { throw TestFailure("not a header line: \(line)") }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let body = Array(bytes[(end + 4)...])
        if let length = headers["content-length"].flatMap(Int.init), length != body.count {
            throw TestFailure("Content-Length \(length) but \(body.count) body bytes")
        }
        return Response(status: status, headers: headers, body: body)
    }
}

/// An external program the tests may use when it is installed (promtool, chromium): its path
/// on PATH, or nil with the reason printed once by the caller.
public enum ExternalTool {
    public static func find(_ names: [String]) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for name in names {
            for directory in path.split(separator: ":") {
                let candidate = "\(directory)/\(name)"
                if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            }
        }
        return nil
    }

    /// Runs `tool` to completion with `input` on stdin; its status, stdout and stderr.
    public static func run(_ tool: String, _ arguments: [String], input: String? = nil, within limit: Duration = .seconds(60))
        async throws -> (status: Int32, output: String, errors: String) {
        let directory = try TemporaryDirectory(prefix: "cascade-tool")
        let inputFile = directory.file("stdin")
        try (input ?? "").write(toFile: inputFile, atomically: true, encoding: .utf8)
        let outputFile = directory.file("stdout"), errorFile = directory.file("stderr")
        // Through the shell, so stdin and both outputs are plain files and nothing can block on a pipe.
        let process = try ChildProcess("/bin/sh", [
            "-c", "in=$1; out=$2; err=$3; shift 3; exec \"$@\" <\"$in\" >\"$out\" 2>\"$err\"", "sh", inputFile, outputFile, errorFile, tool,
        ] + arguments)
        let status = try await process.exitStatus(within: limit)
        let output = (try? String(contentsOfFile: outputFile, encoding: .utf8)) ?? ""
        let errors = (try? String(contentsOfFile: errorFile, encoding: .utf8)) ?? ""
        return (status, output, errors)
    }

    /// Where tests leave files for people (screenshots): `$CASCADE_TEST_OUTPUT`, or
    /// `.build/test-output` of the package the tests were built in. Created if missing.
    public static func outputDirectory() throws -> String {
        let directory: String
        if let chosen = ProcessInfo.processInfo.environment["CASCADE_TEST_OUTPUT"], !chosen.isEmpty {
            directory = chosen
        } else {
            let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
            guard let range = executable.range(of: "/.build/") else {
                throw TestFailure("cannot tell the package's .build directory from \(executable); set CASCADE_TEST_OUTPUT")
            }
            directory = String(executable[..<range.lowerBound]) + "/.build/test-output"
        }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return directory
    }
}
