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

        // wire: frames, message encoding, limits. Pure Swift, no I/O.
        .target(name: "CascadeWire", swiftSettings: strict),

        // net/tls: crypto, epoll event loop, sockets, OpenSSL TLS.
        .target(name: "CascadeCrypto", dependencies: ["COpenSSL", "CCascadeShims"], swiftSettings: strict),
        .target(name: "CascadeNet", dependencies: ["COpenSSL", "CCascadeShims", "CascadeCrypto"], swiftSettings: strict),

        // rpc: multiplexed calls over a framed connection. Knows nothing of upgrades.
        .target(name: "CascadeRPC", dependencies: ["CascadeWire", "CascadeNet"], swiftSettings: strict),

        // Benchmarks and test peers (thin executable, logic in the library).
        .target(name: "CascadeBench", dependencies: ["CascadeNet", "CascadeCrypto", "CascadeRPC", "CascadeWire"], swiftSettings: strict),
        .executableTarget(name: "cascade-bench", dependencies: ["CascadeBench", "CascadeNet"], swiftSettings: strict),

        .target(
            name: "CascadeTestSupport",
            dependencies: ["CascadeCrypto", "CascadeNet"],
            path: "Tests/CascadeTestSupport",
            swiftSettings: strict
        ),
        .testTarget(name: "CascadeRPCTests", dependencies: ["CascadeRPC", "CascadeWire", "CascadeNet", "CascadeTestSupport"], swiftSettings: strict),
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
