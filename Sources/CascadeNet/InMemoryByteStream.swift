import Synchronization

/// One end of an in-memory, bounded, bidirectional pipe: lets every protocol layer be tested
/// without a socket. A writer waits while the other side has `capacity` unread bytes.
public final class InMemoryByteStream: ByteStream {
    private let inbound: Pipe
    private let outbound: Pipe

    private init(inbound: Pipe, outbound: Pipe) {
        self.inbound = inbound
        self.outbound = outbound
    }

    /// Two connected ends.
    public static func pair(capacity: Int = 256 * 1024) -> (InMemoryByteStream, InMemoryByteStream) {
        let forward = Pipe(capacity: capacity)
        let backward = Pipe(capacity: capacity)
        return (InMemoryByteStream(inbound: backward, outbound: forward), InMemoryByteStream(inbound: forward, outbound: backward))
    }

    public func read(maxLength: Int) async throws -> [UInt8] {
        try await inbound.read(maxLength: maxLength)
    }

    public func write(_ bytes: [UInt8]) async throws {
        try await outbound.write(bytes)
    }

    public func close() async {
        outbound.close()
        inbound.close()
    }

    final class Pipe: Sendable {
        struct State {
            var buffer: [UInt8] = []
            var closed = false
            var reader: UnsafeContinuation<Void, Never>?
            var writer: UnsafeContinuation<Void, Never>?
        }

        let capacity: Int
        let state = Mutex(State())

        init(capacity: Int) {
            self.capacity = capacity
        }

        func read(maxLength: Int) async throws -> [UInt8] {
            while true {
                let taken = state.withLock { state -> ([UInt8]?, UnsafeContinuation<Void, Never>?) in
                    guard !state.buffer.isEmpty || state.closed else { return (nil, nil) }
                    let count = min(maxLength, state.buffer.count)
                    let bytes = Array(state.buffer.prefix(count))
                    state.buffer.removeFirst(count)
                    let writer = state.writer
                    state.writer = nil
                    return (bytes, writer)
                }
                if let bytes = taken.0 {
                    taken.1?.resume()
                    return bytes
                }
                try Task.checkCancellation()
                await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
                    let ready = state.withLock { state -> Bool in
                        if !state.buffer.isEmpty || state.closed { return true }
                        state.reader = continuation
                        return false
                    }
                    if ready { continuation.resume() }
                }
            }
        }

        func write(_ bytes: [UInt8]) async throws {
            var offset = 0
            while offset < bytes.count {
                let (written, reader, closed) = state.withLock { state -> (Int, UnsafeContinuation<Void, Never>?, Bool) in
                    if state.closed { return (0, nil, true) }
                    let room = max(0, capacity - state.buffer.count)
                    let count = min(room, bytes.count - offset)
                    state.buffer.append(contentsOf: bytes[offset..<offset + count])
                    let reader = count > 0 ? state.reader : nil
                    if reader != nil { state.reader = nil }
                    return (count, reader, false)
                }
                if closed { throw NetError(.closed, "the in-memory pipe is closed") }
                reader?.resume()
                offset += written
                if offset < bytes.count {
                    await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
                        let ready = state.withLock { state -> Bool in
                            if state.closed || state.buffer.count < capacity { return true }
                            state.writer = continuation
                            return false
                        }
                        if ready { continuation.resume() }
                    }
                }
            }
        }

        func close() {
            let (reader, writer) = state.withLock { state -> (UnsafeContinuation<Void, Never>?, UnsafeContinuation<Void, Never>?) in
                state.closed = true
                defer { state.reader = nil; state.writer = nil }
                return (state.reader, state.writer)
            }
            reader?.resume()
            writer?.resume()
        }
    }
}
