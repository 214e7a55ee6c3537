import CascadeWire
import Foundation
import Testing

@Suite("Throughput (opt-in)")
struct BenchmarkTests {
    /// Run with `CASCADE_WIRE_BENCH=1 swift test -c release --filter Throughput`.
    /// Skipped by default: debug timings mean nothing and the suite must stay fast.
    @Test("Decoding 1 GiB of 16 KiB DATA frames fed in 64 KiB reads",
          .enabled(if: ProcessInfo.processInfo.environment["CASCADE_WIRE_BENCH"] != nil))
    func decodeThroughput() throws {
        var chunk: [UInt8] = []
        for _ in 0..<4 {
            FrameEncoder.appendData(streamID: 1, payload: [UInt8](repeating: 0xAB, count: 16_374),
                                    endStream: false, to: &chunk)
        }
        // 4 frames of 16384 bytes on the wire = exactly one 64 KiB read.
        let reads = (1 << 30) / chunk.count
        var decoder = FrameDecoder()
        var payloadBytes = 0
        var checksum = 0  // touches every payload so the copy cannot be optimized away
        let start = ContinuousClock.now
        for _ in 0..<reads {
            decoder.feed(chunk)
            while case .frame(let frame)? = try decoder.next() {
                payloadBytes += frame.payload.count
                checksum &+= frame.payload.withUnsafeBytes { raw in
                    raw.withMemoryRebound(to: UInt64.self) { words in words.reduce(0, &+) }
                }.hashValue
            }
        }
        let seconds = (ContinuousClock.now - start) / .seconds(1)
        let rate = Double(reads * chunk.count) / seconds / 1e6
        print("decoded \(reads * chunk.count) bytes in \(seconds) s: \(Int(rate)) MB/s")
        #expect(payloadBytes == reads * 4 * 16_374)
        #expect(checksum != 0)
    }
}
