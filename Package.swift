// swift-tools-version: 6.0
// Cascade: safe, fast agent upgrades across a server fleet.
// One target per layer (DESIGN.md §2); each depends only on layers below it.
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "Cascade",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "cascade-bench", targets: ["cascade-bench"]),
        .executable(name: "cascade-agent", targets: ["cascade-agent"]),
        .executable(name: "cascade-upgrader", targets: ["cascade-upgrader"]),
        .executable(name: "cascade-coordinator", targets: ["cascade-coordinator"]),
        .executable(name: "cascadectl", targets: ["cascadectl"]),
    ],
    targets: [
        // C libraries (system) and the shims for what Swift cannot import.
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),
        .systemLibrary(
            name: "CSQLite",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        .target(name: "CCascadeShims", dependencies: ["COpenSSL", "CSQLite"]),

        // log: one line per event (text or JSON), levels, escaping, rate limits. No dependencies.
        .target(name: "CascadeLog", swiftSettings: strict),

        // wire: frames, message encoding, limits. Pure Swift, no I/O.
        .target(name: "CascadeWire", swiftSettings: strict),

        // net/tls: crypto, epoll event loop, sockets, OpenSSL TLS.
        .target(name: "CascadeCrypto", dependencies: ["COpenSSL", "CCascadeShims"], swiftSettings: strict),
        .target(name: "CascadeNet", dependencies: ["COpenSSL", "CCascadeShims", "CascadeCrypto", "CascadeLog"], swiftSettings: strict),

        // metrics: counters, histograms, the Prometheus text format (0.0.4), /proc. Pure Swift, no
        // other module: the RPC layer, the agent runtime and the coordinator all count with it.
        .target(name: "CascadeMetrics", swiftSettings: strict),
        // http: a small GET-only HTTP/1.1 server for read-only views (/metrics, the status page),
        // on the net layer's event loops and sockets (why: HTTPServer.swift).
        .target(name: "CascadeHTTP", dependencies: ["CascadeNet"], swiftSettings: strict),

        // rpc: multiplexed calls over a framed connection. Knows nothing of upgrades.
        .target(name: "CascadeRPC", dependencies: ["CascadeWire", "CascadeNet", "CascadeMetrics"], swiftSettings: strict),

        // api: Cascade's messages and services (Protocols/services.md).
        .target(name: "CascadeAPI", dependencies: ["CascadeWire", "CascadeRPC", "CascadeCrypto", "CascadeNet"], swiftSettings: strict),

        // store: the coordinator's SQLite database and artifact blob store. Only this module speaks SQL.
        .target(name: "CascadeStore", dependencies: ["CSQLite", "CCascadeShims", "CascadeCrypto"], swiftSettings: strict),

        // The agent's local side: release bundles, the on-disk layout, atomic switches.
        .target(name: "CascadeInstall", dependencies: ["CascadeCrypto", "CascadeLog"], swiftSettings: strict),
        // The process pair: the upgrader and the agent's supervision of it (the programs' logic).
        .target(name: "CascadeUpgrader", dependencies: ["CascadeInstall", "CascadeCrypto", "CascadeLog"], swiftSettings: strict),
        // The agent's fleet side: coordinator session, leader and member roles, verified downloads.
        .target(
            name: "CascadeAgentRuntime",
            dependencies: ["CascadeAPI", "CascadeRPC", "CascadeNet", "CascadeCrypto", "CascadeWire", "CascadeMetrics", "CascadeLog"],
            swiftSettings: strict
        ),
        .target(
            name: "CascadeAgent",
            dependencies: ["CascadeInstall", "CascadeUpgrader", "CascadeCrypto", "CascadeAgentRuntime", "CascadeMetrics", "CascadeHTTP", "CascadeLog"],
            swiftSettings: strict
        ),
        .executableTarget(name: "cascade-agent", dependencies: ["CascadeAgent"], swiftSettings: strict),
        .executableTarget(name: "cascade-upgrader", dependencies: ["CascadeUpgrader"], swiftSettings: strict),

        // Command-line plumbing shared by the programs: options, help, exit codes, tables, progress.
        .target(name: "CascadeCLI", swiftSettings: strict),

        // The coordinator (server of record) and the operator's client, each a library.
        .target(
            name: "CascadeCoordinator",
            dependencies: [
                "CascadeAPI", "CascadeStore", "CascadeRPC", "CascadeNet", "CascadeCrypto", "CascadeWire", "CascadeCLI",
                "CascadeMetrics", "CascadeHTTP", "CascadeLog",
            ],
            swiftSettings: strict
        ),
        .target(
            name: "CascadeCtl",
            // CascadeInstall: `release create` checks a bundle with the agent's own unpacker.
            dependencies: ["CascadeAPI", "CascadeRPC", "CascadeNet", "CascadeCrypto", "CascadeWire", "CascadeCLI", "CascadeInstall"],
            swiftSettings: strict
        ),
        .executableTarget(name: "cascade-coordinator", dependencies: ["CascadeCoordinator"], swiftSettings: strict),
        .executableTarget(name: "cascadectl", dependencies: ["CascadeCtl"], swiftSettings: strict),

        // Benchmarks and test peers (thin executable, logic in the library).
        .target(
            name: "CascadeBench",
            dependencies: ["CascadeNet", "CascadeCrypto", "CascadeRPC", "CascadeWire", "CascadeAPI", "CascadeAgentRuntime", "CascadeLog"],
            swiftSettings: strict
        ),
        .executableTarget(name: "cascade-bench", dependencies: ["CascadeBench", "CascadeNet"], swiftSettings: strict),

        .target(
            name: "CascadeTestSupport",
            dependencies: ["CascadeCrypto", "CascadeNet"],
            path: "Tests/CascadeTestSupport",
            swiftSettings: strict
        ),
        .testTarget(name: "CascadeRPCTests", dependencies: ["CascadeRPC", "CascadeWire", "CascadeNet", "CascadeTestSupport"], swiftSettings: strict),
        .testTarget(name: "CascadeAPITests", dependencies: ["CascadeAPI", "CascadeWire", "CascadeCrypto", "CascadeTestSupport"], swiftSettings: strict),
        .testTarget(name: "CascadeStoreTests", dependencies: ["CascadeStore", "CascadeCrypto", "CascadeTestSupport"], swiftSettings: strict),
        .testTarget(
            name: "CascadeAgentTests",
            dependencies: ["CascadeInstall", "CascadeUpgrader", "CascadeAgent", "CascadeTestSupport", "cascade-agent", "cascade-upgrader"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "CascadeAgentRuntimeTests",
            dependencies: ["CascadeAgentRuntime", "CascadeAPI", "CascadeRPC", "CascadeNet", "CascadeCrypto", "CascadeWire", "CascadeTestSupport", "CascadeLog"],
            swiftSettings: strict
        ),
        .testTarget(name: "CascadeCLITests", dependencies: ["CascadeCLI"], swiftSettings: strict),
        .testTarget(name: "CascadeLogTests", dependencies: ["CascadeLog"], swiftSettings: strict),
        .testTarget(
            name: "CascadeHTTPTests",
            dependencies: ["CascadeHTTP", "CascadeMetrics", "CascadeNet", "CascadeTestSupport"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "CascadeCoordinatorTests",
            dependencies: [
                "CascadeCoordinator", "CascadeCtl", "CascadeCLI", "CascadeAPI", "CascadeStore", "CascadeRPC", "CascadeNet",
                "CascadeCrypto", "CascadeWire", "CascadeTestSupport", "CascadeAgentRuntime", "CascadeLog", "cascade-coordinator", "cascadectl",
            ],
            swiftSettings: strict
        ),
        // The end-to-end fault suite: the real coordinator and agent pairs on loopback.
        .testTarget(
            name: "CascadeFleetTests",
            dependencies: [
                "CascadeAPI", "CascadeRPC", "CascadeNet", "CascadeCrypto", "CascadeWire", "CascadeTestSupport",
                "cascade-coordinator", "cascade-agent", "cascade-upgrader",
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "CascadeWireTests", dependencies: ["CascadeWire"], swiftSettings: strict),
        .testTarget(name: "CascadeCryptoTests", dependencies: ["CascadeCrypto", "CascadeTestSupport"], swiftSettings: strict),
        .testTarget(
            name: "CascadeNetTests",
            dependencies: ["CascadeNet", "CascadeCrypto", "CascadeTestSupport", "cascade-bench"],
            swiftSettings: strict
        ),
    ],
    swiftLanguageModes: [.v6]
)
