public import CascadeRPC

/// Why a release, a manifest or a chunk was refused. `code` says which rule; `message` is one
/// sentence with the context (version, chunk index, digests) for logs and operators.
public struct ReleaseError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String

        /// The signed manifest names a key id that is not among the pinned release keys.
        public static let unknownKey = Code(name: "unknown-key")
        /// The signature is not a valid Ed25519 signature of the manifest bytes by that key.
        public static let badSignature = Code(name: "bad-signature")
        /// The signed bytes do not decode as a manifest (wire.md §10 violation).
        public static let malformedManifest = Code(name: "malformed-manifest")
        /// The manifest decodes but breaks the rules of services.md §4.1.
        public static let inconsistentManifest = Code(name: "inconsistent-manifest")
        /// A chunk index outside 0..<chunkCount.
        public static let wrongChunkIndex = Code(name: "wrong-chunk-index")
        /// A chunk whose length is not the one the manifest implies.
        public static let wrongChunkSize = Code(name: "wrong-chunk-size")
        /// A chunk whose SHA-256 is not the manifest's.
        public static let chunkHashMismatch = Code(name: "chunk-hash-mismatch")
        /// A whole artifact of the wrong size.
        public static let artifactSizeMismatch = Code(name: "artifact-size-mismatch")
        /// A whole artifact whose SHA-256 is not the manifest's.
        public static let artifactHashMismatch = Code(name: "artifact-hash-mismatch")
        /// A version string that is not a `ReleaseVersion`.
        public static let badVersion = Code(name: "bad-version")
        /// A lower version without a valid downgrade authorisation (services.md §4.5).
        public static let downgradeRefused = Code(name: "downgrade-refused")
        /// A release of another program than the one that would install it.
        public static let wrongProgram = Code(name: "wrong-program")
        /// A leader's order that is not what the coordinator said the rollout installs.
        public static let unexpectedRelease = Code(name: "unexpected-release")
        /// Reading or hashing a file failed.
        public static let io = Code(name: "io")

        public var description: String { name }
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }

    /// The status a handler answers with (services.md §5): manifest and version problems are
    /// INVALID_ARGUMENT, corrupt chunks DATA_LOSS, local failures INTERNAL.
    public var rpcError: RPCError {
        let status: RPCCode = switch code {
        case .wrongChunkIndex: .outOfRange
        case .wrongChunkSize, .chunkHashMismatch, .artifactSizeMismatch, .artifactHashMismatch: .dataLoss
        case .io: .internal
        case .downgradeRefused: .failedPrecondition
        default: .invalidArgument
        }
        return RPCError(status, message)
    }
}
