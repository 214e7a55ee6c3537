public import CascadeAPI
public import CascadeCrypto
public import CascadeInstall
import CascadeHTTP
public import CascadeNet
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The fleet side's settings, from `<root>/fleet.conf` ("key = value" lines, `#` comments).
/// Without the file the agent runs as a lone pair (no coordinator). Keys:
///
///     coordinator = 10.0.0.5:7400          # the coordinator's address
///     bind = 10.1.2.3                      # this server's address (it is clustered by it)
///     member-port = 7401                   # where members reach it when it leads (0 = any)
///     ca = /etc/cascade/ca.pem             # the fleet CA
///     cert = /etc/cascade/agent.pem        # SAN cascade://agent/<id>
///     key = /etc/cascade/agent.key
///     release-key = /etc/cascade/release.pub.pem   # pinned release keys; repeatable
///     report-interval = 5                  # seconds, until the coordinator says otherwise
///     idle-cpu = 0.9                       # fixed idle ratios (tests and demos only)
///     idle-memory = 0.5
///     metrics-listen = 9401                # serve GET /metrics: PORT (loopback) or HOST:PORT; off when absent
///
/// Debug builds only (test-only, refused by release builds as an unknown key):
///
///     test-corrupt-served-chunks = 3,7     # as a leader, flip a byte in these chunks when serving
public struct FleetConfig: Sendable {
    public var coordinator: SocketAddress
    public var bind: String
    public var memberPort: UInt16
    public var tls: TLSConfiguration
    public var releaseKeys: [Ed25519PublicKey]
    public var reportInterval: Duration
    public var idleOverride: IdleRatios?
    /// Test-only (debug builds): chunks a leader corrupts when serving them (the fault suite's
    /// "a leader serves a corrupted chunk").
    public var corruptServedChunks: Set<UInt32> = []
    /// Where `/metrics` is served over plain HTTP; nil: not served. A bare port is loopback.
    public var metricsListen: SocketAddress?

    public static func path(_ layout: AgentLayout) -> String { layout.fleetConfigFile }

    /// The keys a fleet.conf may hold (debug builds add the test-only fault switch).
    static var knownKeys: [String] {
        var known = ["coordinator", "bind", "member-port", "ca", "cert", "key", "release-key", "report-interval", "idle-cpu", "idle-memory", "metrics-listen"]
        #if DEBUG
        known.append("test-corrupt-served-chunks")  // test-only fault switch
        #endif
        return known
    }

    /// nil when the file does not exist; a bad file is an error naming the line.
    public static func load(_ layout: AgentLayout) throws(InstallError) -> FleetConfig? {
        let path = path(layout)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw InstallError(.layout, "cannot read \(path)")
        }
        var values: [String: [String]] = [:]
        for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)[0]
            guard !line.allSatisfy(\.isWhitespace) else { continue }
            let parts = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, !parts[1].isEmpty else { throw InstallError(.layout, "\(path) line \(number + 1) is not \"key = value\"") }
            guard knownKeys.contains(parts[0]) else {
                let hint = KeySuggestion.closest(to: parts[0], among: knownKeys).map { "; did you mean \"\($0)\"?" } ?? ""
                throw InstallError(
                    .layout, "\(path) line \(number + 1) has the unknown key \"\(parts[0])\"\(hint) (known keys: \(knownKeys.joined(separator: ", ")))")
            }
            values[parts[0], default: []].append(parts[1])
        }
        func required(_ key: String) throws(InstallError) -> String {
            guard let value = values[key]?.last else { throw InstallError(.layout, "\(path) needs \"\(key) = ...\"") }
            return value
        }
        func number(_ key: String) throws(InstallError) -> Double? {
            guard let text = values[key]?.last else { return nil }
            guard let value = Double(text), value >= 0 else { throw InstallError(.layout, "\(path): \(key) must be a number, not \"\(text)\"") }
            return value
        }
        // Checked here rather than left to the TLS layer, so the error names the key to fix.
        for key in ["ca", "cert", "key"] {
            let file = try required(key)
            guard access(file, R_OK) == 0 else {
                let reason = errno == ENOENT ? "does not exist" : "cannot be read (\(String(cString: strerror(errno))))"
                throw InstallError(.layout, "\(path): \(key) = \(file) \(reason); fix the path of \"\(key)\"")
            }
        }
        let coordinatorText = try required("coordinator")
        let coordinator: SocketAddress
        do {
            // A host name is resolved (getaddrinfo) each time the file is read; the port defaults to 7400.
            coordinator = try SocketAddress(resolving: coordinatorText, defaultPort: 7400)
        } catch {
            throw InstallError(.layout, "\(path): coordinator: \(error.message)")
        }
        // This server's address: a literal IP, or a name resolved to one (getaddrinfo).
        var bind = try required("bind")
        if (try? SocketAddress(ip: bind, port: 0)) == nil {
            do {
                bind = try SocketAddress(resolving: bind, defaultPort: 0).ipString
            } catch {
                throw InstallError(.layout, "\(path): bind: \(error.message)")
            }
        }
        var keys: [Ed25519PublicKey] = []
        for file in values["release-key"] ?? [] {
            guard let pem = try? String(contentsOfFile: file, encoding: .utf8), let key = try? Ed25519PublicKey(pemRepresentation: pem) else {
                throw InstallError(.layout, "\(path): release-key \(file) is not a readable Ed25519 public key (PEM)")
            }
            keys.append(key)
        }
        guard !keys.isEmpty else { throw InstallError(.layout, "\(path) needs at least one \"release-key = FILE\"") }
        let port = try number("member-port") ?? 7401
        guard port <= 65535 else { throw InstallError(.layout, "\(path): member-port \(Int(port)) is not a TCP port") }
        var idle: IdleRatios?
        if let cpu = try number("idle-cpu") { idle = IdleRatios(cpu: min(cpu, 1), memory: min(try number("idle-memory") ?? cpu, 1)) }
        var config = FleetConfig(
            coordinator: coordinator, bind: bind, memberPort: UInt16(port),
            tls: TLSConfiguration(trustRootsFile: try required("ca"), certificateChainFile: try required("cert"), privateKeyFile: try required("key")),
            releaseKeys: keys, reportInterval: .milliseconds(Int64((try number("report-interval") ?? 5) * 1000)), idleOverride: idle)
        if let text = values["metrics-listen"]?.last {
            do {
                config.metricsListen = try HTTPListenAddress.parse(text)
            } catch {
                throw InstallError(
                    .layout, "\(path): metrics-listen = \(text) is not PORT (loopback) or HOST:PORT (\(error.message)); fix \"metrics-listen\"")
            }
        }
        if let text = values["test-corrupt-served-chunks"]?.last {
            let indices = text.split(separator: ",").map { UInt32($0.trimmingCharacters(in: .whitespaces)) }
            guard !indices.contains(nil) else {
                throw InstallError(.layout, "\(path): test-corrupt-served-chunks must be chunk indices like \"3,7\", not \"\(text)\"")
            }
            config.corruptServedChunks = Set(indices.compactMap { $0 })
        }
        return config
    }
}

/// "Did you mean": the known key closest to a mistyped one, by edit distance.
enum KeySuggestion {
    /// The closest of `known` within a third of the word's length (at least 2 edits), if any.
    static func closest(to word: String, among known: [String]) -> String? {
        let scored = known.map { ($0, distance(word, $0)) }.min { $0.1 < $1.1 }
        guard let (key, edits) = scored, edits <= max(2, word.count / 3) else { return nil }
        return key
    }

    /// Levenshtein distance.
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        guard !a.isEmpty else { return b.count }
        var row = Array(0...b.count)
        for i in 1...a.count {
            var previous = row[0]
            row[0] = i
            for j in stride(from: 1, through: b.count, by: 1) {
                let substitution = previous + (a[i - 1] == b[j - 1] ? 0 : 1)
                previous = row[j]
                row[j] = min(substitution, row[j] + 1, row[j - 1] + 1)
            }
        }
        return row[b.count]
    }
}
