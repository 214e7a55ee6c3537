public import CascadeCLI
import CascadeHTTP
import CascadeLog
import CascadeNet
import CascadeStore
import Dispatch
import Foundation

/// `cascade-coordinator`: the command line of the server of record.
public enum CoordinatorCommand {
    public static let program = Program(
        Command(
            "cascade-coordinator", summary: "Run the Cascade coordinator: the fleet's database, artifact store and rollout engine.",
            discussion: """
                Agents and operators connect over mutual TLS 1.3. The certificate must carry the SAN URI
                cascade://coordinator/<id>; --ca is the fleet CA that signed every agent and operator
                certificate. Releases are accepted only if signed by a --trusted-key.
                Stops gracefully on SIGTERM or SIGINT (drains calls in flight).
                --metrics-listen serves GET /metrics (Prometheus text format 0.0.4) and --status-listen a live
                status page (/) with its data (/status.json), over plain HTTP, read-only; both are off by
                default. A bare PORT (or :PORT) listens on loopback (127.0.0.1); any other address must be
                written out (0.0.0.0:9400 serves the network, unauthenticated). The same address for both
                serves everything on one listener.
                One coordinator per data directory: it holds a lock on DIR/lock (with its pid) while it
                runs, and a second one on the same directory is refused. At start it raises its
                open-file limit to the hard limit and logs the limit it runs with.
                Logs go to standard error, one line per event: time (RFC 3339, UTC), level,
                program[pid], component, message and key=value fields; --log-format json writes
                one JSON object per line instead. Refused TLS handshakes and calls refused with
                PERMISSION_DENIED are logged as warnings, at most 5 lines per 10 s per reason.

                Example:
                  cascade-coordinator --data /var/lib/cascade --listen 0.0.0.0:7400 \\
                    --ca ca.pem --cert coordinator.pem --key coordinator.key --trusted-key release.pub.pem
                """,
            options: [
                .value("config", valueName: "FILE", help: "Read options from FILE (key = value lines).",
                       environment: "CASCADE_COORDINATOR_CONFIG", configurable: false),
                .value("data", valueName: "DIR", help: "Data directory: \(CoordinatorStore.databaseFileName) (SQLite), blobs/ and tls-ticket-keys.", required: true),
                .value("listen", valueName: "HOST:PORT", help: "Address to serve on (port 0 picks one); a host name is resolved.", default: "0.0.0.0:7400"),
                .value("ca", valueName: "FILE", help: "Fleet CA certificate (PEM).", environment: "CASCADE_CA", required: true),
                .value("cert", valueName: "FILE", help: "Coordinator certificate (PEM).", environment: "CASCADE_CERT", required: true),
                .value("key", valueName: "FILE", help: "Coordinator private key (PEM, unencrypted).", environment: "CASCADE_KEY", required: true),
                .value("trusted-key", valueName: "FILE", help: "Ed25519 public key (PEM) that may sign releases; repeatable.",
                       repeatable: true, required: true),
                .value("ipv4-prefix", valueName: "BITS", help: "IPv4 prefix length that forms a cluster.", default: "24"),
                .value("ipv6-prefix", valueName: "BITS", help: "IPv6 prefix length that forms a cluster.", default: "64"),
                .value("cpu-weight", valueName: "W", help: "Idle weight = W × cpu idle + memory-weight × memory idle.", default: "0.6"),
                .value("memory-weight", valueName: "W", help: "Memory coefficient of the idle weight.", default: "0.4"),
                .value("report-interval", valueName: "DURATION", help: "How often agents report.", default: "5s"),
                .value("liveness-timeout", valueName: "DURATION", help: "Silence after which an agent is lost (a lost leader is replaced).", default: "30s"),
                .value("engine-interval", valueName: "DURATION", help: "How often the rollout engine re-evaluates rollouts.", default: "1s"),
                .value("stall-timeout", valueName: "DURATION", help: "A running cluster with nothing in flight and no change for this long fails the agents it waits on (gone, or never instructed by their leader).", default: "10m"),
                .value("metrics-listen", valueName: "ADDR", help: "Serve GET /metrics (Prometheus) here: PORT for 127.0.0.1:PORT, or HOST:PORT. Off by default."),
                .value("status-listen", valueName: "ADDR", help: "Serve the live status page (/ and /status.json) here: PORT or HOST:PORT. Off by default."),
                .value("log-format", valueName: "FORMAT", help: "Log lines as text or json (one JSON object per line).",
                       default: "text", environment: "CASCADE_LOG_FORMAT"),
                .value("log-level", valueName: "LEVEL", help: "Lowest level logged: debug, info, warning or error.",
                       default: "info", environment: "CASCADE_LOG_LEVEL"),
                .value("placement", valueName: "SOURCE", help: "What places an agent in its cluster: source (its connection's address, which must be one of its certificate's IP SANs if it has any) or certificate (its certificate's IP SAN).", default: "source"),
            ],
            run: run),
        configOption: "config")

    private static func run(_ context: CommandContext) async throws {
        let arguments = context.arguments
        guard let format = LogFormat(name: try arguments.string("log-format")) else {
            throw context.usageError("--log-format: \"\(try arguments.string("log-format"))\" is not \(LogFormat.choices)")
        }
        guard let level = LogLevel(name: try arguments.string("log-level")) else {
            throw context.usageError("--log-level: \"\(try arguments.string("log-level"))\" is not \(LogLevel.choices)")
        }
        Logging.configure(program: "cascade-coordinator", level: level, format: format)
        let listen: SocketAddress
        do {
            // A host name is resolved (getaddrinfo): "localhost:7400", "coordinator.internal:7400".
            listen = try SocketAddress(resolving: try arguments.string("listen"))
        } catch let error as NetError {
            throw context.usageError("--listen: \(error.message)")
        }
        let weights: IdleWeights
        let prefixes: PrefixLengths
        do {
            weights = try IdleWeights(cpu: try number(arguments, "cpu-weight"), memory: try number(arguments, "memory-weight"))
            prefixes = try PrefixLengths(ipv4: try arguments.int("ipv4-prefix"), ipv6: try arguments.int("ipv6-prefix"))
        } catch let error as StoreError {
            throw context.usageError(error.message)
        }
        guard let placement = CoordinatorConfiguration.Placement(rawValue: try arguments.string("placement")) else {
            throw context.usageError("--placement: \"\(try arguments.string("placement"))\" is not source or certificate")
        }
        var configuration = CoordinatorConfiguration(
            dataDirectory: try arguments.string("data"),
            tls: TLSConfiguration(
                trustRootsFile: try arguments.string("ca"), certificateChainFile: try arguments.string("cert"),
                privateKeyFile: try arguments.string("key")),
            trustedKeyFiles: arguments.list("trusted-key"), listenAddress: listen,
            store: StoreConfiguration(prefixLengths: prefixes, weights: weights, livenessTimeout: try arguments.duration("liveness-timeout")),
            reportInterval: try arguments.duration("report-interval"), engineInterval: try arguments.duration("engine-interval"),
            placement: placement)
        configuration.stallTimeout = try arguments.duration("stall-timeout")
        for (name, keyPath) in [("metrics-listen", \CoordinatorConfiguration.metricsAddress), ("status-listen", \.statusAddress)] {
            guard let text = arguments.optionalString(name) else { continue }
            do {
                configuration[keyPath: keyPath] = try HTTPListenAddress.parse(text)
            } catch {
                throw context.usageError("--\(name): \(error.message)")
            }
        }
        // Before anything opens descriptors: every agent session holds one. Logged once the
        // coordinator runs (a refusal to start stays the only line).
        let descriptors = DescriptorLimit.raiseToHard()
        let coordinator: Coordinator
        let bound: SocketAddress
        do {
            coordinator = try Coordinator(configuration: configuration)
            bound = try coordinator.start()
        } catch {
            throw CLIError.failure("cannot start: \(error)")
        }
        // The first line on standard output is the contract scripts wait for; the log has it too.
        context.print("cascade-coordinator: listening on \(bound), data in \(configuration.dataDirectory)")
        log.info("listening on \(bound), data in \(configuration.dataDirectory)", ["address": "\(bound)", "data": configuration.dataDirectory])
        log.info(descriptors)
        for (what, address) in [("metrics on http://\(coordinator.metricsAddress.map { "\($0)" } ?? "")/metrics", coordinator.metricsAddress),
                                ("status page on http://\(coordinator.statusAddress.map { "\($0)" } ?? "")/", coordinator.statusAddress)] {
            guard let address else { continue }
            context.print("cascade-coordinator: \(what)")
            log.info(what, ["address": "\(address)"])
            if !HTTPListenAddress.isLoopback(address) {
                log.warning("\(what) is reachable from the network without TLS or authentication")
            }
        }
        let signal = await SignalWaiter.wait(for: [SIGTERM, SIGINT])
        context.print("cascade-coordinator: signal \(signal), draining and stopping")
        log.info("signal \(signal), draining and stopping", ["signal": "\(signal)"])
        await coordinator.shutdown()
        context.print("cascade-coordinator: stopped")
        log.info("stopped")
    }

    private static func number(_ arguments: ParsedArguments, _ name: String) throws -> Double {
        guard let value = try arguments.typed(name, expected: "a number such as 0.6", parse: { Double($0) }) else {
            throw CLIError.usage("--\(name) needs a value")
        }
        return value
    }
}

/// Waits for the first of some signals (the default action — dying — is turned off for them).
enum SignalWaiter {
    static func wait(for signals: [Int32]) async -> Int32 {
        await withCheckedContinuation { (continuation: CheckedContinuation<Int32, Never>) in
            let fired = SignalOnce(continuation)
            for number in signals {
                Foundation.signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler { fired.fire(number) }
                source.resume()
                fired.keep(source)
            }
        }
    }
}

/// Resumes the waiter once, whichever signal comes first, and keeps the sources alive.
private final class SignalOnce: @unchecked Sendable {
    // @unchecked: every field is touched under `lock`.
    private let lock = NSLock()
    private var continuation: CheckedContinuation<Int32, Never>?
    private var sources: [any DispatchSourceSignal] = []

    init(_ continuation: CheckedContinuation<Int32, Never>) {
        self.continuation = continuation
    }

    func keep(_ source: any DispatchSourceSignal) {
        lock.withLock { sources.append(source) }
    }

    func fire(_ number: Int32) {
        let waiter = lock.withLock { () -> CheckedContinuation<Int32, Never>? in
            defer { continuation = nil }
            return continuation
        }
        waiter?.resume(returning: number)
    }
}
