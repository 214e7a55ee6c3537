import CascadeNet
import CascadeRPC
import Testing

/// A server remembers the last call head it decoded, so a client calling one method over and
/// over skips decoding and the method lookup. A registration made since must still win.
@Suite("Remembered call heads")
struct CallHeadCacheTests {
    static let method = RPCMethod<Note, Note>("cascade.HeadCache/Echo", allowedRoles: [.agent])

    func pair(_ router: RPCRouter) throws -> RPCConnection {
        let (a, b) = InMemoryByteStream.pair()
        let server = RPCConnection(
            transport: b, side: .server, peer: try PeerIdentity(role: .agent, id: "member-1"), router: router)
        let client = RPCConnection(transport: a, side: .client, peer: try PeerIdentity(role: .agent, id: "leader-1"))
        Task { await server.run() }
        Task { await client.run() }
        return client
    }

    @Test("a method registered again after calls with the same head is looked up again")
    func reRegistered() async throws {
        let router = RPCRouter()
        router.unaryImmediate(Self.method) { request, _ in Note(text: "first:" + request.text) }
        let client = try pair(router)
        // Twice with identical HEADERS bytes: the second is answered from the remembered head.
        #expect(try await client.unary(Self.method, Note(text: "a")).text == "first:a")
        #expect(try await client.unary(Self.method, Note(text: "b")).text == "first:b")

        router.unary(Self.method) { request, _ in Note(text: "second:" + request.text) }
        #expect(try await client.unary(Self.method, Note(text: "c")).text == "second:c")

        // Narrower roles take effect too: the agent is now refused.
        let operatorsOnly = RPCMethod<Note, Note>("cascade.HeadCache/Echo", allowedRoles: [.operator])
        router.unaryImmediate(operatorsOnly) { request, _ in request }
        let error = await #expect(throws: RPCError.self) { _ = try await client.unary(Self.method, Note(text: "d")) }
        #expect(error?.code == .permissionDenied)
    }

    @Test("calls to different methods on one connection each reach their own handler")
    func alternating() async throws {
        let other = RPCMethod<Note, Note>("cascade.HeadCache/Other", allowedRoles: [.agent])
        let router = RPCRouter()
        router.unaryImmediate(Self.method) { request, _ in Note(text: "echo:" + request.text) }
        router.unary(other) { request, _ in Note(text: "other:" + request.text) }
        let client = try pair(router)
        for round in 0..<3 {
            #expect(try await client.unary(Self.method, Note(text: "\(round)")).text == "echo:\(round)")
            #expect(try await client.unary(other, Note(text: "\(round)")).text == "other:\(round)")
            #expect(try await client.unary(Self.method, Note(text: "\(round)"), options: CallOptions(metadata: [MetadataEntry("x-round", "\(round)")])).text == "echo:\(round)")
        }
    }
}
