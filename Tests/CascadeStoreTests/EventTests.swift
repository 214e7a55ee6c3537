@testable import CascadeStore
import Testing

@Suite("Audit log")
struct EventTests {
    @Test("events keep actor, time, kind, subject and detail, and filter by id, kind and subject")
    func filters() throws {
        let fixture = try StoreFixture()
        let store = fixture.store
        let first = try store.appendEvent(actor: .operator("alice"), kind: "custom.one", subject: "x:1", detail: "one")
        fixture.clock.advance(.seconds(1))
        try store.appendEvent(actor: .agent("a1"), kind: "custom.two", subject: "x:2", detail: "two")
        try store.appendEvent(actor: .coordinator(), kind: "custom.one", subject: "x:2", detail: "three")
        let all = try store.events()
        #expect(all.map(\.detail) == ["one", "two", "three"])
        #expect(all[0] == EventRecord(
            id: first, time: Timestamp(milliseconds: 1_700_000_000_000), actor: EventActor(role: "operator", id: "alice"),
            kind: "custom.one", subject: "x:1", detail: "one"))
        #expect(all[1].time == Timestamp(milliseconds: 1_700_000_001_000))
        #expect(all[2].actor.description == "coordinator")
        #expect(try store.events(afterID: first).map(\.detail) == ["two", "three"])
        #expect(try store.events(kind: "custom.one").map(\.detail) == ["one", "three"])
        #expect(try store.events(subject: "x:2").map(\.detail) == ["two", "three"])
        #expect(try store.events(kind: "custom.one", subject: "x:2").map(\.detail) == ["three"])
        #expect(try store.events(limit: 1).map(\.detail) == ["one"])
        #expect(try store.recentEvents(limit: 2).map(\.detail) == ["two", "three"])
        #expect(try store.recentEvents(limit: 1, subject: "x:2").map(\.detail) == ["three"])
        #expect(try store.recentEvents(limit: 5, since: Timestamp(milliseconds: 1_700_000_001_000)).map(\.detail) == ["two", "three"])
        #expect(try store.events(since: Timestamp(milliseconds: 1_700_000_001_000), limit: 1).map(\.detail) == ["two"])
        #expect(all[0].actor.description == "operator alice")
        #expect(all[1].actor.description == "agent a1")
        #expect(EventActor.coordinator("heartbeats").description == "coordinator")
    }

    @Test("an event keeps the rollout, cluster and agent it is about, from its subject and its refs, and each filter finds it; filters combine with AND")
    func refs() throws {
        let fixture = try StoreFixture()
        let store = fixture.store
        try store.appendEvent(actor: .coordinator(), kind: .rolloutClusterState, subject: EventSubject.rollout(3),
                              refs: EventRefs(cluster: "fd00:1::/64"), detail: "cluster state")
        try store.appendEvent(actor: .coordinator(), kind: .rolloutAgentState, subject: EventSubject.rollout(3),
                              refs: EventRefs(cluster: "10.0.1.0/24", agent: "a1"), detail: "agent state")
        try store.appendEvent(actor: .agent("a1"), kind: .agentOffline, subject: EventSubject.agent("a1"), detail: "offline")
        try store.appendEvent(actor: .coordinator(), kind: .leaderChanged, subject: EventSubject.cluster("fd00:1::/64"), detail: "leader")
        let all = try store.events()
        #expect(all.map(\.rolloutID) == [3, 3, 0, 0])
        #expect(all.map(\.cluster) == ["fd00:1::/64", "10.0.1.0/24", "", "fd00:1::/64"])
        #expect(all.map(\.agentID) == ["", "a1", "a1", ""])
        #expect(try store.events(cluster: "fd00:1::/64").map(\.detail) == ["cluster state", "leader"])
        #expect(try store.events(rolloutID: 3).map(\.detail) == ["cluster state", "agent state"])
        #expect(try store.events(agentID: "a1").map(\.detail) == ["agent state", "offline"])
        #expect(try store.events(rolloutID: 3, cluster: "10.0.1.0/24", agentID: "a1").map(\.detail) == ["agent state"])
        #expect(try store.events(rolloutID: 3, agentID: "a2").isEmpty)
    }

    @Test("timestamps print as ISO 8601 in UTC")
    func timestampText() {
        #expect(Timestamp(milliseconds: 1_700_000_000_250).description == "2023-11-14T22:13:20.250Z")
        #expect(Timestamp(milliseconds: -1).description == "1969-12-31T23:59:59.999Z")
        #expect((Timestamp(milliseconds: 0) + .milliseconds(1500)).milliseconds == 1500)
    }
}
