import CascadeStore
import Testing

@Suite("Subnet clustering")
struct ClusteringTests {
    @Test("addresses map to canonical prefixes with default lengths", arguments: [
        ("127.0.1.5", "127.0.1.0/24"),
        ("127.0.1.255", "127.0.1.0/24"),
        ("127.0.2.1", "127.0.2.0/24"),
        ("10.20.30.40", "10.20.30.0/24"),
        ("fd00:1:2:3:4:5:6:7", "fd00:1:2:3::/64"),
        ("FD00:0001:0002:0003::abcd", "fd00:1:2:3::/64"),
        ("[fd00:1:2:4::1]", "fd00:1:2:4::/64"),
        ("::1", "::/64"),
        ("::ffff:127.0.1.9", "127.0.1.0/24"),
        ("2001:db8::", "2001:db8::/64"),
    ])
    func defaultPrefixes(address: String, expected: String) throws {
        #expect(try SubnetPrefix(address: address).description == expected)
    }

    @Test("custom prefix lengths, including byte-unaligned ones", arguments: [
        ("10.1.2.3", 16, 64, "10.1.0.0/16"),
        ("10.1.2.3", 20, 64, "10.1.0.0/20"),
        ("10.1.31.3", 20, 64, "10.1.16.0/20"),
        ("10.1.2.3", 32, 64, "10.1.2.3/32"),
        ("10.1.2.3", 0, 64, "0.0.0.0/0"),
        ("fd00:1:2:3:4::1", 24, 48, "fd00:1:2::/48"),
        ("fd00:1:2:ffff::1", 24, 52, "fd00:1:2:f000::/52"),
        ("fd00:1:2:3:4::1", 24, 128, "fd00:1:2:3:4::1/128"),
    ])
    func customPrefixes(address: String, v4: Int, v6: Int, expected: String) throws {
        let lengths = try PrefixLengths(ipv4: v4, ipv6: v6)
        #expect(try SubnetPrefix(address: address, lengths: lengths).description == expected)
    }

    @Test("a mixed IPv4/IPv6 fleet forms one cluster per subnet")
    func mixedFleet() throws {
        let addresses = ["127.0.1.1", "fd00::1", "127.0.2.1", "127.0.1.2", "fd00::2", "fd00:0:0:1::1", "::ffff:127.0.2.7"]
        var groups: [String: [String]] = [:]
        for address in addresses {
            groups[try SubnetPrefix(address: address).description, default: []].append(address)
        }
        #expect(groups == [
            "127.0.1.0/24": ["127.0.1.1", "127.0.1.2"],
            "127.0.2.0/24": ["127.0.2.1", "::ffff:127.0.2.7"],
            "fd00::/64": ["fd00::1", "fd00::2"],
            "fd00:0:0:1::/64": ["fd00:0:0:1::1"],
        ])
    }

    @Test("malformed addresses and prefix lengths are refused", arguments: ["", "127.0.1", "127.0.1.256", "fd00::1::2", "host.example", "fe80::1%eth0"])
    func badAddresses(address: String) {
        let error = #expect(throws: StoreError.self) { try SubnetPrefix(address: address) }
        #expect(error?.code == .invalidArgument)
        #expect(error?.message == "'\(address)' is not an IPv4 or IPv6 address")
    }

    @Test("prefix lengths outside the family's range are refused")
    func badLengths() {
        #expect(throws: StoreError(.invalidArgument, "an IPv4 prefix length must be 0...32, not 33")) { try PrefixLengths(ipv4: 33) }
        #expect(throws: StoreError(.invalidArgument, "an IPv6 prefix length must be 0...128, not -1")) { try PrefixLengths(ipv6: -1) }
    }

    @Test("operator prefixes parse to the canonical form")
    func parsing() {
        #expect(SubnetPrefix(parsing: "127.0.1.0/24")?.description == "127.0.1.0/24")
        #expect(SubnetPrefix(parsing: "127.0.1.77/24")?.description == "127.0.1.0/24")
        #expect(SubnetPrefix(parsing: "FD00:1:2:3:0::/64")?.description == "fd00:1:2:3::/64")
        #expect(SubnetPrefix(parsing: "127.0.1.0") == nil)
        #expect(SubnetPrefix(parsing: "127.0.1.0/33") == nil)
        #expect(SubnetPrefix(parsing: "127.0.1.0/x") == nil)
        #expect(SubnetPrefix(parsing: "127.0.1.0/24")?.contains(address: "127.0.1.200") == true)
        #expect(SubnetPrefix(parsing: "127.0.1.0/24")?.contains(address: "127.0.2.1") == false)
    }
}

@Suite("Idle weights and leader choice")
struct LeaderElectionTests {
    @Test("the default weights are 0.6 × cpu idle + 0.4 × memory idle")
    func defaults() throws {
        #expect(IdleWeights.default.cpu == 0.6)
        #expect(IdleWeights.default.memory == 0.4)
        #expect(IdleWeights.default.weight(cpuIdle: 1, memoryIdle: 0) == 0.6)
        #expect(IdleWeights.default.weight(cpuIdle: 0, memoryIdle: 1) == 0.4)
        #expect(IdleWeights.default.weight(cpuIdle: 0.5, memoryIdle: 0.5) == 0.5)
        #expect(try IdleWeights(cpu: 1, memory: 3).weight(cpuIdle: 0.5, memoryIdle: 0.25) == 1.25)
        #expect(throws: StoreError.self) { try IdleWeights(cpu: 0, memory: 0) }
        #expect(throws: StoreError.self) { try IdleWeights(cpu: -1, memory: 1) }
        #expect(throws: StoreError.self) { try IdleWeights(cpu: .nan, memory: 1) }
    }

    @Test("candidates rank by weight, then by smallest id; dead ones are skipped")
    func ranking() {
        let candidates = [
            LeaderCandidate(id: "b", weight: 0.7, isLive: true),
            LeaderCandidate(id: "a", weight: 0.5, isLive: true),
            LeaderCandidate(id: "z", weight: 0.9, isLive: false),
            LeaderCandidate(id: "c", weight: 0.7, isLive: true),
            LeaderCandidate(id: "B", weight: 0.7, isLive: true),
        ]
        #expect(LeaderElection.ranked(candidates).map(\.id) == ["B", "b", "c", "a"])
        #expect(LeaderElection.best(candidates)?.id == "B")
        #expect(LeaderElection.best([LeaderCandidate(id: "z", weight: 1, isLive: false)]) == nil)
    }

    @Test("a live leader stays, a dead one is replaced, and no one live keeps the last leader")
    func decide() {
        let live = [LeaderCandidate(id: "a", weight: 0.1, isLive: true), LeaderCandidate(id: "b", weight: 0.9, isLive: true)]
        #expect(LeaderElection.decide(current: "a", candidates: live) == "a")
        #expect(LeaderElection.decide(current: nil, candidates: live) == "b")
        let aDead = [LeaderCandidate(id: "a", weight: 0.1, isLive: false), LeaderCandidate(id: "b", weight: 0.05, isLive: true)]
        #expect(LeaderElection.decide(current: "a", candidates: aDead) == "b")
        let allDead = [LeaderCandidate(id: "a", weight: 0.1, isLive: false)]
        #expect(LeaderElection.decide(current: "a", candidates: allDead) == "a")
        #expect(LeaderElection.decide(current: nil, candidates: allDead) == nil)
    }
}
