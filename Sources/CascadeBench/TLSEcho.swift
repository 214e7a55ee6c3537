import CascadeNet

/// Raw TLS ping-pong over Cascade's event loop and TLSConnection, without the RPC layer: the
/// floor that RPC latency is measured against (same wire protocol as Benchmarks/c/tls_echo.c:
/// a 4-byte big-endian size, then messages of that size echoed back).
public enum TLSEcho {
    /// `tls-echo-server --bind IP --port P --ca F --cert F --key F`: echoes one connection.
    public static func server(_ arguments: ArraySlice<String>) async throws {
        let options = try Options(arguments)
        let context = try TLSContext(configuration: TLSBulk.configuration(options), side: .server)
        let listener = try TCPListener(bindingTo: SocketAddress(
            ip: options.string("bind", default: "127.0.0.1"), port: UInt16(options.int("port", default: 0))))
        emitLine("listening \(listener.localAddress.port)")
        let connection = try await context.accept(listener.accept())
        listener.close()
        // Run on the connection's loop thread, as RPC connections do.
        try await withTaskExecutorPreference(connection.socket.loop) {
            guard let header = try await readExactly(connection, 4) else { return }
            let size = header.reduce(0) { $0 << 8 | Int($1) }
            while let message = try await readExactly(connection, size) {
                try await connection.write(message)
            }
        }
        await connection.close()
    }

    /// `tls-echo-client --host IP --port P --ca F --cert F --key F --calls N --size S`
    public static func client(_ arguments: ArraySlice<String>) async throws {
        let options = try Options(arguments)
        let context = try TLSContext(configuration: TLSBulk.configuration(options), side: .client)
        let remote = try SocketAddress(ip: options.string("host", default: "127.0.0.1"), port: UInt16(options.int("port")))
        let calls = try options.int("calls", default: 20_000)
        let size = try options.int("size", default: 100)
        let connection = try await context.connect(to: remote)
        try await connection.write([UInt8(size >> 24 & 0xFF), UInt8(size >> 16 & 0xFF), UInt8(size >> 8 & 0xFF), UInt8(size & 0xFF)])
        let message = [UInt8](repeating: 0x5A, count: size)
        let samples = try await withTaskExecutorPreference(connection.socket.loop) {
            for _ in 0..<1000 {
                try await connection.write(message)
                _ = try await readExactly(connection, size)
            }
            var samples: [Double] = []
            samples.reserveCapacity(calls)
            for _ in 0..<calls {
                let start = MonotonicTime.now()
                try await connection.write(message)
                _ = try await readExactly(connection, size)
                samples.append(MonotonicTime.now().seconds(since: start) * 1e6)
            }
            return samples.sorted()
        }
        emitLine("result mode=latency calls=\(calls) size=\(size) p50_us=\(format(samples[calls / 2])) p99_us=\(format(samples[min(calls - 1, calls * 99 / 100)]))")
        await connection.close()
    }

    static func readExactly(_ connection: TLSConnection, _ count: Int) async throws -> [UInt8]? {
        var out: [UInt8] = []
        while out.count < count {
            let bytes = try await connection.read(maxLength: count - out.count)
            if bytes.isEmpty { return nil }
            out += bytes
        }
        return out
    }
}
