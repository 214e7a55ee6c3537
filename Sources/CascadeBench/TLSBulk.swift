import CascadeCrypto
import CascadeNet
#if canImport(Glibc)
import Glibc
#endif

/// The TLS bulk benchmark and test peer: one connection, a stream of bytes, the receiver
/// hashing every 1 MiB chunk with SHA-256 as a member checks release chunks.
public enum TLSBulk {
    static let chunkSize = 1 << 20

    static func configuration(_ options: Options) throws(BenchError) -> TLSConfiguration {
        TLSConfiguration(
            trustRootsFile: try options.string("ca"),
            certificateChainFile: try options.string("cert"),
            privateKeyFile: try options.string("key"))
    }

    /// `tls-recv --bind IP --port P --ca F --cert F --key F [--reply-digest]`
    /// Prints `listening <port>`, takes one connection, reads to the end, hashing each
    /// 1 MiB chunk. With --reply-digest it also hashes the whole stream, sends that digest
    /// back to the sender and prints it as `digest=<hex>`.
    public static func receive(_ arguments: ArraySlice<String>) async throws {
        let options = try Options(arguments, flags: ["reply-digest"])
        let context = try TLSContext(configuration: configuration(options), side: .server)
        let address = try SocketAddress(ip: options.string("bind", default: "127.0.0.1"), port: UInt16(options.int("port", default: 0)))
        let listener = try TCPListener(bindingTo: address)
        emitLine("listening \(listener.localAddress.port)")
        let connection = try await context.accept(listener.accept())
        listener.close()

        let replyDigest = options.flag("reply-digest")
        let start = MonotonicTime.now()
        let cpuStart = processCPUSeconds()
        var total = 0
        let chunkHasher = SHA256()
        var chunkFill = 0
        var chunks = 0
        let whole = SHA256()
        while true {
            let bytes = try await connection.read(maxLength: chunkSize)
            if bytes.isEmpty { break }
            total += bytes.count
            if replyDigest { whole.update(bytes) }
            // Split the read at chunk boundaries so each digest covers exactly one chunk.
            var offset = 0
            while offset < bytes.count {
                let take = min(chunkSize - chunkFill, bytes.count - offset)
                chunkHasher.update(bytes[offset..<offset + take])
                chunkFill += take
                offset += take
                if chunkFill == chunkSize {
                    _ = chunkHasher.finalize()
                    chunkFill = 0
                    chunks += 1
                }
            }
        }
        if chunkFill > 0 {
            _ = chunkHasher.finalize()
            chunks += 1
        }
        let seconds = MonotonicTime.now().seconds(since: start)
        let cpu = processCPUSeconds() - cpuStart
        var extra = "chunks=\(chunks)"
        if replyDigest {
            let digest = whole.finalize()
            try await connection.write(digest.bytes)
            extra += " digest=\(digest.hex)"
        }
        await connection.close()
        emitLine(resultLine(bytes: total, seconds: seconds, cpu: cpu, extra: extra))
    }

    /// `tls-send --host IP --port P --ca F --cert F --key F --bytes N [--bind IP] [--expect-digest]`
    /// Sends N bytes in 1 MiB writes: the 1 MiB `pattern` block, repeated. With --expect-digest it then reads the
    /// receiver's 32-byte digest and fails unless it matches its own.
    public static func send(_ arguments: ArraySlice<String>) async throws {
        let options = try Options(arguments, flags: ["expect-digest"])
        let context = try TLSContext(configuration: configuration(options), side: .client)
        let remote = try SocketAddress(ip: options.string("host", default: "127.0.0.1"), port: UInt16(options.int("port")))
        let bindIP = try options.string("bind", default: "")
        let local: SocketAddress? = bindIP.isEmpty ? nil : try SocketAddress(ip: bindIP, port: 0)
        let count = try options.int("bytes")
        let expectDigest = options.flag("expect-digest")
        let connection = try await context.connect(to: remote, from: local)

        let start = MonotonicTime.now()
        let cpuStart = processCPUSeconds()
        let hasher = SHA256()
        // One pseudo-random block, sent again and again (as the C baseline does), so the
        // figure measures the transport, not the pattern generator.
        let block = pattern(offset: 0, count: chunkSize)
        var sent = 0
        while sent < count {
            let chunk = count - sent >= chunkSize ? block : Array(block.prefix(count - sent))
            if expectDigest { hasher.update(chunk) }
            try await connection.write(chunk)
            sent += chunk.count
        }
        var extra = ""
        if expectDigest {
            // close_notify ends our direction only; the digest still comes back (TLS 1.3 half-close).
            try await connection.finishWriting()
            var reply: [UInt8] = []
            while reply.count < 32 {
                let bytes = try await connection.read(maxLength: 32 - reply.count)
                if bytes.isEmpty { break }
                reply += bytes
            }
            let mine = hasher.finalize()
            guard reply == mine.bytes else {
                throw BenchError("the receiver's digest \(Hex.encode(reply)) does not match the sent data's \(mine.hex)")
            }
            extra = "digest=\(mine.hex)"
        }
        let seconds = MonotonicTime.now().seconds(since: start)
        let cpu = processCPUSeconds() - cpuStart
        await connection.close()
        emitLine(resultLine(bytes: sent, seconds: seconds, cpu: cpu, extra: extra))
    }

    /// A deterministic, incompressible-looking byte pattern: byte i is byte (i % 8) of
    /// SplitMix64(i / 8), so any slice can be made on its own.
    public static func pattern(offset: Int, count: Int) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            for index in 0..<count {
                let position = UInt64(offset + index)
                let word = splitMix(position / 8)
                let shift = (position % 8) * 8
                buffer[index] = UInt8(truncatingIfNeeded: word >> shift)
            }
            initialized = count
        }
    }

    static func splitMix(_ input: UInt64) -> UInt64 {
        var z: UInt64 = input &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
