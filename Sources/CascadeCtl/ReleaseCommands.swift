import CascadeAPI
import CascadeCLI
import CascadeCrypto
import CascadeInstall
import CascadeRPC
import CascadeWire
#if canImport(Glibc)
import Glibc
#endif

extension CascadeCtl {
    /// The one program agents install (their fleet runtime checks `manifest.name`).
    static let agentProgramName = "cascade-agent"

    static let releaseCommand = Command(
        "release", summary: "Sign, push and inspect releases.",
        subcommands: [
            Command(
                "create", summary: "Write the signed manifest of an artifact (offline; no coordinator needed).",
                discussion: """
                Hashes ARTIFACT chunk by chunk (SHA-256 of every chunk and of the whole) and signs the
                manifest with the Ed25519 key. The manifest goes to --out (default ARTIFACT.manifest).

                Example: cascadectl release create --signing-key release.key --name cascade-agent --version 1.4.0 agent-1.4.0.tar.gz
                """,
                options: [
                    .value("signing-key", short: "k", valueName: "FILE", help: "Ed25519 release-signing private key (from 'key generate'); not the TLS --key.",
                           required: true, configurable: false),
                    .value("name", valueName: "NAME", help: "The program the release is of (agents install only cascade-agent).", default: "cascade-agent"),
                    .value("version", valueName: "VERSION", help: "Release version, e.g. 1.4.0 or 2.0-rc1.", required: true),
                    .value("chunk-size", valueName: "SIZE", help: "Chunk size (4KiB ... 2MiB).", default: "1MiB"),
                    .value("out", short: "o", valueName: "FILE", help: "Where to write the manifest (default: ARTIFACT.manifest)."),
                ],
                positionals: [PositionalSpec("ARTIFACT", help: "The release artifact (bundle) file.")],
                run: createRelease),
            Command(
                "push", summary: "Upload a signed release; resumes an interrupted push.",
                discussion: """
                Asks the coordinator what it already holds and sends only the missing chunks, each checked
                against the manifest first. Shows progress on standard error when it is a terminal.

                Example: cascadectl release push --manifest agent-1.4.0.tar.gz.manifest agent-1.4.0.tar.gz
                """,
                options: [.value("manifest", short: "m", valueName: "FILE",
                                 help: "The signed manifest (default: ARTIFACT.manifest).")],
                positionals: [PositionalSpec("ARTIFACT", help: "The artifact the manifest describes.")],
                run: pushRelease),
            Command(
                "authorize-downgrade", summary: "Sign permission for agents to go down to a lower release (offline).",
                discussion: """
                Agents refuse a release lower than the highest they installed unless the rollout carries
                an authorisation signed by a release key, naming the program, the highest version they may
                leave (--from) and the exact version to install (--to), valid until --expires from now.
                Pass the file to 'rollout start --downgrade'. A failed health check's local rollback needs none.

                Example: cascadectl release authorize-downgrade --signing-key release.key --from 1.5.0 --to 1.4.0 --expires 24h
                """,
                options: [
                    .value("signing-key", short: "k", valueName: "FILE", help: "Ed25519 release-signing private key; not the TLS --key.", required: true, configurable: false),
                    .value("name", valueName: "NAME", help: "The program.", default: "cascade-agent"),
                    .value("from", valueName: "VERSION", help: "The highest version agents may leave.", required: true),
                    .value("to", valueName: "VERSION", help: "The version to install.", required: true),
                    .value("expires", valueName: "DURATION", help: "How long it stays valid.", default: "24h"),
                    .value("out", short: "o", valueName: "FILE", help: "Where to write it (default: downgrade-FROM-to-TO.auth)."),
                ],
                run: authorizeDowngrade),
            Command("list", summary: "List the releases the coordinator holds, newest first.",
                    options: [.value("limit", valueName: "N", help: "At most this many.", default: "50")], run: listReleases),
            Command(
                "inspect", summary: "Print a signed manifest file (offline): the release it names and who signed it.",
                discussion: """
                Reads MANIFEST (as written by 'release create') without a coordinator. With --trusted-key,
                checks its signature as agents do and exits 1 if it does not verify; without, says that
                the signature was not checked.

                Example: cascadectl release inspect agent-1.4.0.tar.gz.manifest --trusted-key release.key.pub
                """,
                options: [
                    .value("trusted-key", valueName: "FILE", help: "Ed25519 public key (PEM) to check the signature with; repeatable.",
                           repeatable: true, configurable: false),
                    .flag("chunks", help: "Also list every chunk's SHA-256.", configurable: false),
                ],
                positionals: [PositionalSpec("MANIFEST", help: "A signed manifest file.")], run: inspectRelease),
            Command("show", summary: "Show one release.",
                    positionals: [PositionalSpec("VERSION", help: "The release version.")], run: showRelease),
            Command("verify", summary: "Check every chunk the coordinator holds of a release against its signed manifest.",
                    discussion: """
                    A release found damaged is marked so (release list says DAMAGED), every active rollout of
                    it fails, and it is repaired by pushing the same signed artifact again: only the damaged
                    chunks travel. Exits 0 when the release is whole, 1 when it is damaged or incomplete.
                    """,
                    positionals: [PositionalSpec("VERSION", help: "The release version.")], run: verifyRelease),
            Command("delete", summary: "Delete a release no active rollout uses (its artifact too, unless another version shares it).",
                    positionals: [PositionalSpec("VERSION", help: "The release version.")], run: deleteRelease),
        ])

    // MARK: create

    static func createRelease(_ context: CommandContext) async throws {
        let arguments = context.arguments
        let artifact = arguments.positional("ARTIFACT")
        let name = try arguments.string("name")
        let version = try arguments.string("version")
        do {
            _ = try ReleaseVersion(version)
        } catch {
            throw context.usageError("invalid value '\(version)' for '--version': \(error.message)")
        }
        guard let chunkSize = try arguments.typed("chunk-size", expected: "a size from 4KiB to 2MiB such as 1MiB",
                                                  parse: parseChunkSize) else { throw context.usageError("missing --chunk-size") }
        let out = arguments.optionalString("out") ?? artifact + ".manifest"
        let key = try readSigningKey(try arguments.string("signing-key"))
        // Sign only what an agent would install: its program, its bundle layout, its VERSION.
        guard name == agentProgramName else {
            throw context.usageError("agents install only releases named \(agentProgramName), not '\(name)'")
        }
        let bundleVersion: String
        do {
            bundleVersion = try BundleCheck.version(ofBundle: artifact)
        } catch {
            throw CLIError.failure("\(artifact) is not a release bundle an agent would install: \(error.message)")
        }
        guard bundleVersion == version else {
            throw CLIError.failure(
                "\(artifact) holds VERSION \(bundleVersion), not \(version); agents refuse a release whose manifest and VERSION differ")
        }
        let signed: SignedManifest, manifest: Manifest
        do {
            let built = try ManifestBuilder(chunkSize: chunkSize).build(fileAt: artifact, name: name, version: version)
            signed = try SignedManifest.sign(built, with: key)
            manifest = try Manifest(serializedBytes: signed.manifestBytes)
        } catch let error as ReleaseError {
            throw CLIError.failure(error.message)
        } catch let error as CryptoError {
            throw CLIError.failure("signing failed: \(error.message)")
        }
        try FileOutput.replace(out, contents: signed.serializedBytes())
        try context.emit(
            Render.json(manifest, signed: signed, file: out),
            ["release   \(manifest.version) (\(manifest.name))",
             "size      \(manifest.size) bytes (\(HumanFormat.bytes(manifest.size)))",
             "chunks    \(manifest.chunkCount) × \(HumanFormat.bytes(manifest.chunkSize))",
             "sha256    \(manifest.sha256.hex)",
             "key id    \(signed.keyID)",
             "manifest  \(out)"])
    }

    // MARK: inspect

    static func inspectRelease(_ context: CommandContext) async throws {
        let path = context.arguments.positional("MANIFEST")
        // A manifest of the largest release has ~64 Ki chunk hashes: a few MiB at most.
        let bytes = try FileOutput.read(path, limit: 16 * 1024 * 1024)
        let signed: SignedManifest, manifest: Manifest
        do {
            signed = try SignedManifest(serializedBytes: bytes)
            manifest = try Manifest(serializedBytes: signed.manifestBytes)
        } catch {
            throw CLIError.failure("\(path) is not a signed Cascade manifest (give the .manifest file that 'release create' wrote)")
        }
        var signature = "not checked (give --trusted-key)"
        let keyFiles = context.arguments.list("trusted-key")
        if !keyFiles.isEmpty {
            var keys: [Ed25519PublicKey] = []
            for file in keyFiles {
                let text = String(decoding: try FileOutput.read(file, limit: 64 * 1024), as: UTF8.self)
                do {
                    keys.append(try Ed25519PublicKey(pemRepresentation: text))
                } catch {
                    throw CLIError.failure("\(file) is not an Ed25519 public key: \(error.message)")
                }
            }
            do {
                _ = try ReleaseVerifier(trustedKeys: keys).verify(signed)
                signature = "verified (key id \(signed.keyID))"
            } catch {
                throw CLIError.failure("the manifest \(path) does not verify: \(error.message)")
            }
        }
        var lines = [
            "release   \(manifest.version) (\(manifest.name))",
            "size      \(manifest.size) bytes (\(HumanFormat.bytes(manifest.size)))",
            "chunks    \(manifest.chunkCount) × \(HumanFormat.bytes(manifest.chunkSize))",
            "sha256    \(manifest.sha256.hex)",
            "created   \(Render.time(ms: manifest.createdAt * 1000))",
            "key id    \(signed.keyID)",
            "signature \(signature)",
            "manifest  sha256 \(signed.manifestDigest.hex)",
        ]
        var json = Render.json(manifest, signed: signed, file: path)
        if case .object(var fields) = json {
            fields.append(JSONValue.Member("signature", .string(signature)))
            json = .object(fields)
        }
        if try context.arguments.flag("chunks") {
            lines += manifest.chunkHashes.enumerated().map { "chunk \($0.offset)  \($0.element.hex)" }
        }
        try context.emit(json, lines)
    }

    // MARK: authorize-downgrade

    /// The Ed25519 release key at `path` (a secret file).
    static func readSigningKey(_ path: String) throws(CLIError) -> Ed25519PrivateKey {
        let text: String
        do {
            text = try SecretFile.read(path, limit: 64 * 1024)
        } catch {
            throw CLIError.failure(error.message)
        }
        do {
            return try Ed25519PrivateKey(pemRepresentation: text)
        } catch {
            throw CLIError.failure("\(path) is not an Ed25519 private key: \(error.message)")
        }
    }

    static func authorizeDowngrade(_ context: CommandContext) async throws {
        let arguments = context.arguments
        let from = try arguments.string("from"), to = try arguments.string("to")
        for (option, value) in [("from", from), ("to", to)] {
            do {
                _ = try ReleaseVersion(value)
            } catch {
                throw context.usageError("invalid value '\(value)' for '--\(option)': \(error.message)")
            }
        }
        guard let fromVersion = try? ReleaseVersion(from), let toVersion = try? ReleaseVersion(to), toVersion < fromVersion else {
            throw context.usageError("--to \(to) must be lower than --from \(from): this authorises going down")
        }
        guard let lifetime = try arguments.optionalDuration("expires"), lifetime > .zero, lifetime <= .seconds(366 * 86_400) else {
            throw context.usageError("invalid value for '--expires': expected a duration from 1s to 366d such as 24h")
        }
        let keyPath = try arguments.string("signing-key")
        let key = try readSigningKey(keyPath)
        let expiresAt = UInt64(time(nil)) + UInt64(lifetime.components.seconds)
        let authorization = DowngradeAuthorization(name: try arguments.string("name"), fromVersion: from, toVersion: to, expiresAt: expiresAt)
        let signed: SignedDowngrade
        do {
            signed = try SignedDowngrade.sign(authorization, with: key)
        } catch {
            throw CLIError.failure("signing failed: \(error.message)")
        }
        let out = arguments.optionalString("out") ?? "downgrade-\(from)-to-\(to).auth"
        try FileOutput.replace(out, contents: signed.serializedBytes())
        try context.emit(
            .object([
                .init("name", .string(authorization.name)), .init("from", .string(from)), .init("to", .string(to)),
                .init("expires_at", .int(expiresAt)), .init("key_id", .string(signed.keyID)), .init("file", .string(out)),
            ]),
            ["downgrade \(authorization.name) from \(from) (or lower) to \(to)",
             "expires   unix time \(expiresAt) (in \(HumanFormat.duration(lifetime)))",
             "key id    \(signed.keyID)",
             "file      \(out)  (pass it to: cascadectl rollout start --release \(to) --downgrade \(out))"])
    }

    /// `1MiB`, `512KiB`, `64K`, `2M`, or plain bytes; 4 KiB to the protocol's 2 MiB.
    static func parseChunkSize(_ text: String) -> UInt32? {
        let units: [(String, UInt64)] = [("KiB", 1024), ("MiB", 1 << 20), ("KB", 1024), ("MB", 1 << 20),
                                         ("K", 1024), ("M", 1 << 20), ("k", 1024), ("B", 1), ("", 1)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            guard let number = UInt64(text.dropLast(suffix.count)) else { continue }
            let (value, overflow) = number.multipliedReportingOverflow(by: scale)
            guard !overflow, value >= 4096, value <= UInt64(APILimits.maxChunkSize) else { return nil }
            return UInt32(value)
        }
        return nil
    }

    // MARK: push

    static func pushRelease(_ context: CommandContext) async throws {
        let artifactPath = context.arguments.positional("ARTIFACT")
        let manifestPath = context.arguments.optionalString("manifest") ?? artifactPath + ".manifest"
        let signed: SignedManifest, manifest: Manifest
        do {
            signed = try SignedManifest(serializedBytes: try FileOutput.read(manifestPath))
            manifest = try Manifest(serializedBytes: signed.manifestBytes)
            try manifest.validate()
        } catch let error as CLIError {
            throw error
        } catch let error as WireError {
            throw CLIError.failure("\(manifestPath) is not a signed manifest: \(error.message)")
        } catch let error as ReleaseError {
            throw CLIError.failure("\(manifestPath) is not a usable manifest: \(error.message)")
        }
        let artifact = try ArtifactFile(artifactPath)
        guard artifact.size == manifest.size else {
            throw CLIError.failure("\(artifactPath) is \(artifact.size) bytes but its manifest says \(manifest.size); is it the right file?")
        }
        let connection = try Connection(context)
        let version = manifest.version

        var missing = Array(0..<manifest.chunkCount)
        do {
            let status = try await connection.unary(OperatorService.releaseStatus, ReleaseQuery(version: version))
            if let held = status.release {
                if let digest = held.manifestSHA256, digest != signed.manifestDigest {
                    throw CLIError.failure("the coordinator already holds release \(version) with a different manifest; a version is signed once, so pick a new version")
                }
                missing = status.missingChunks
            }
        } catch let error as RPCError where error.code == .notFound {
            // A new release: send everything.
        } catch {
            throw connection.explain(error)
        }
        if missing.isEmpty, let info = try? await connection.call(OperatorService.showRelease, ReleaseQuery(version: version)).release,
           info.complete {
            if try !context.json { context.print("release \(version) is already complete on the coordinator; nothing to send") }
            try context.emit(Render.json(info), Render.releaseLines(info))
            return
        }
        let sending = missing.reduce(UInt64(0)) { $0 + UInt64(manifest.size(ofChunk: $1)) }
        if try !context.json {
            let held = manifest.chunkCount - missing.count
            context.print("release \(version): sending \(missing.count) of \(manifest.chunkCount) chunks (\(HumanFormat.bytes(sending)))"
                          + (held > 0 ? "; the coordinator already holds \(held)" : ""))
        }
        let progress = ProgressLine(total: sending, enabled: isatty(2) == 1, write: context.console.writeError)
        let response: PushReleaseResponse
        do {
            response = try await connection.connect().clientStreaming(OperatorService.pushRelease) { writer in
                try await writer.write(PushReleaseRequest(signedManifest: signed))
                for index in missing {
                    let data = try artifact.read(offset: manifest.offset(ofChunk: index), count: manifest.size(ofChunk: index))
                    do {
                        try manifest.verifyChunk(index: index, bytes: data)
                    } catch let error as ReleaseError {
                        throw CLIError.failure("\(artifactPath) does not match its manifest at chunk \(index) (\(error.message)); was it changed after 'release create'?")
                    }
                    try await writer.write(PushReleaseRequest(chunk: Chunk(index: UInt32(index), data: data, sha256: manifest.chunkHashes[index])))
                    progress.add(UInt64(data.count))
                }
            }
        } catch {
            progress.clear()
            throw connection.explain(error)
        }
        progress.finish()
        guard let info = response.release else { throw CLIError.failure("the coordinator answered the push without release information") }
        guard info.complete else {
            throw CLIError.failure("the coordinator holds \(info.chunksPresent) of \(info.chunkCount) chunks of \(version); run the push again to send the rest")
        }
        if try !context.json { context.print("pushed release \(version): complete") }
        try context.emit(Render.json(info), Render.releaseLines(info))
    }

    // MARK: list, show

    static func listReleases(_ context: CommandContext) async throws {
        let connection = try Connection(context)
        let limit = try context.arguments.int("limit", in: 1...10_000)
        let releases = Array(try await connection.call(OperatorService.listReleases, ListReleasesRequest()).releases.prefix(limit))
        try context.emit(.array(releases.map(Render.json)), Render.releaseTable(releases))
    }

    static func verifyRelease(_ context: CommandContext) async throws {
        let connection = try Connection(context)
        let version = context.arguments.positional("VERSION")
        let response = try await connection.call(OperatorService.verifyRelease, ReleaseQuery(version: version))
        guard let info = response.release else { throw CLIError.failure("no release \(version)") }
        let verdict = info.complete ? "release \(version) is whole: every chunk matches its signed manifest"
            : info.damage.isEmpty ? "release \(version) is incomplete: \(info.chunksPresent) of \(info.chunkCount) chunks pushed"
            : "release \(version) is DAMAGED: \(info.damage)"
        guard info.complete else {
            if try context.json { try context.emit(Render.json(info), []) }
            throw CLIError.failure(verdict)
        }
        try context.emit(Render.json(info), [verdict])
    }

    static func deleteRelease(_ context: CommandContext) async throws {
        let connection = try Connection(context)
        let version = context.arguments.positional("VERSION")
        let response = try await connection.call(OperatorService.deleteRelease, ReleaseQuery(version: version))
        try context.emit(response.release.map(Render.json) ?? .null, ["deleted release \(version)"])
    }

    static func showRelease(_ context: CommandContext) async throws {
        let connection = try Connection(context)
        let version = context.arguments.positional("VERSION")
        let response = try await connection.call(OperatorService.showRelease, ReleaseQuery(version: version))
        guard let info = response.release else { throw CLIError.failure("no release \(version)") }
        try context.emit(Render.json(info), Render.releaseLines(info))
    }
}

/// An artifact read at chunk offsets with `pread`, never whole.
final class ArtifactFile: Sendable {
    let path: String
    let size: UInt64
    private let fd: Int32

    init(_ path: String) throws(CLIError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CLIError.failure("cannot open \(path): \(String(cString: strerror(errno)))") }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw CLIError.failure("\(path) is not a regular file")
        }
        self.path = path
        self.fd = fd
        self.size = UInt64(info.st_size)
    }

    deinit { close(fd) }

    func read(offset: UInt64, count: Int) throws(CLIError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + filled, count - filled, off_t(offset) + off_t(filled)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw CLIError.failure("reading \(path) failed: \(String(cString: strerror(errno)))")
            }
            if n == 0 { throw CLIError.failure("\(path) ended early at byte \(offset + UInt64(filled)); was it changed?") }
            filled += n
        }
        return buffer
    }
}

/// `12.0 MiB / 100.0 MiB (12%)  45.2 MiB/s` redrawn in place on standard error, at most 5 times a second.
final class ProgressLine: Sendable {
    private let total: UInt64
    private let enabled: Bool
    private let write: @Sendable (String) -> Void
    private let start = ContinuousClock.now
    private let state = Locked<(done: UInt64, drawn: ContinuousClock.Instant?)>((0, nil))

    init(total: UInt64, enabled: Bool, write: @escaping @Sendable (String) -> Void) {
        self.total = total
        self.enabled = enabled
        self.write = write
    }

    func add(_ bytes: UInt64) {
        guard enabled else { return }
        let now = ContinuousClock.now
        let line: String? = state.withLock { state in
            state.done += bytes
            if let drawn = state.drawn, now - drawn < .milliseconds(200), state.done < total { return nil }
            state.drawn = now
            return text(state.done, now)
        }
        if let line { write("\r\u{1B}[K" + line) }
    }

    func finish() {
        guard enabled else { return }
        let done = state.withLock { $0.done }
        write("\r\u{1B}[K" + text(done, .now) + "\n")
    }

    func clear() {
        if enabled { write("\r\u{1B}[K") }
    }

    private func text(_ done: UInt64, _ now: ContinuousClock.Instant) -> String {
        let seconds = seconds(now - start)
        let rate = seconds > 0 ? Double(done) / seconds : 0
        return "\(HumanFormat.bytes(done)) / \(HumanFormat.bytes(total)) (\(HumanFormat.percent(done, of: total)))  \(HumanFormat.bytes(Int64(rate)))/s"
    }
}
