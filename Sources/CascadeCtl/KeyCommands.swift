import CascadeCLI
import CascadeCrypto
#if canImport(Glibc)
import Glibc
#endif

extension CascadeCtl {
    static let keyCommand = Command(
        "key", summary: "Release-signing keys (Ed25519).",
        subcommands: [
            Command(
                "generate", summary: "Make a new signing key: FILE (private, mode 0600) and FILE.pub.",
                discussion: """
                Keep the private key offline; give FILE.pub to the coordinator as a trusted key.
                Existing files are never overwritten.

                Example: cascadectl key generate --out release.key
                """,
                options: [.value("out", short: "o", valueName: "FILE", help: "Where to write the private key.", required: true)],
                run: generateKey),
        ])

    static func generateKey(_ context: CommandContext) async throws {
        let path = try context.arguments.string("out")
        let publicPath = path + ".pub"
        for existing in [path, publicPath] where access(existing, F_OK) == 0 {
            throw CLIError.failure("refusing to overwrite \(existing): the file already exists")
        }
        let key: Ed25519PrivateKey
        do {
            key = try Ed25519PrivateKey.generate()
            try SecretFile.create(at: path, contents: key.pemRepresentation)
        } catch {
            throw CLIError.failure(error.message)
        }
        do {
            try FileOutput.create(publicPath, contents: Array(key.publicKey.pemRepresentation.utf8), mode: 0o644)
        } catch {
            unlink(path)
            throw error
        }
        let keyID = key.publicKey.keyID
        try context.emit(
            ["privateKey": .string(path), "publicKey": .string(publicPath), "keyId": .string(keyID)],
            ["private key  \(path) (mode 0600; keep it offline)",
             "public key   \(publicPath) (trust it on the coordinator)",
             "key id       \(keyID)"])
    }
}

/// Writing plain (non-secret) files.
enum FileOutput {
    /// A new file (never overwrites), written fully and fsynced.
    static func create(_ path: String, contents: [UInt8], mode: mode_t) throws(CLIError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else {
            if errno == EEXIST { throw CLIError.failure("refusing to overwrite \(path): the file already exists") }
            throw CLIError.failure("cannot create \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        try writeAll(fd, contents, path: path)
    }

    /// Replaces `path` atomically: a temporary file in the same directory, fsynced, renamed.
    static func replace(_ path: String, contents: [UInt8]) throws(CLIError) {
        let temporary = path + ".tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CLIError.failure("cannot create \(temporary): \(String(cString: strerror(errno)))") }
        do {
            try writeAll(fd, contents, path: temporary)
            close(fd)
        } catch {
            close(fd)
            unlink(temporary)
            throw error
        }
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw CLIError.failure("cannot write \(path): \(reason)")
        }
    }

    private static func writeAll(_ fd: Int32, _ contents: [UInt8], path: String) throws(CLIError) {
        var offset = 0
        while offset < contents.count {
            let written = contents.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 {
                if errno == EINTR { continue }
                throw CLIError.failure("writing \(path) failed: \(String(cString: strerror(errno)))")
            }
            offset += written
        }
        guard fsync(fd) == 0 else { throw CLIError.failure("fsync of \(path) failed: \(String(cString: strerror(errno)))") }
    }

    /// A whole small file's bytes (manifests, keys), refusing more than `limit`.
    static func read(_ path: String, limit: Int = 8 << 20) throws(CLIError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CLIError.failure("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw CLIError.failure("reading \(path) failed: \(String(cString: strerror(errno)))")
            }
            if count == 0 { return result }
            result += buffer[0..<count]
            if result.count > limit { throw CLIError.failure("\(path) is larger than \(HumanFormat.bytes(limit)); is it the right file?") }
        }
    }
}
