public import CascadeWire

/// How idle an agent is: CPU and memory idle ratios in [0, 1], sent as fixed-point parts per
/// million (services.md §2.3) so every node compares exactly the same numbers.
///
/// ```
/// IdleRatios { 1 cpu_idle_ppm: uint32  2 mem_idle_ppm: uint32 }   each 0...1000000
/// ```
public struct IdleRatios: WireMessage, Hashable, Sendable, CustomStringConvertible {
    public var cpuPPM: UInt32
    public var memoryPPM: UInt32

    /// Values above 1,000,000 are clamped.
    public init(cpuPPM: UInt32 = 0, memoryPPM: UInt32 = 0) {
        self.cpuPPM = min(cpuPPM, APILimits.ratioScale)
        self.memoryPPM = min(memoryPPM, APILimits.ratioScale)
    }

    /// Ratios as fractions, clamped to [0, 1] (NaN counts as 0) and rounded to the nearest ppm.
    public init(cpu: Double, memory: Double) {
        self.init(cpuPPM: Self.ppm(cpu), memoryPPM: Self.ppm(memory))
    }

    public var cpu: Double { Double(cpuPPM) / Double(APILimits.ratioScale) }
    public var memory: Double { Double(memoryPPM) / Double(APILimits.ratioScale) }

    public var description: String { "cpu \(cpuPPM) ppm, mem \(memoryPPM) ppm" }

    static func ppm(_ fraction: Double) -> UInt32 {
        guard fraction > 0 else { return 0 }  // also NaN
        guard fraction < 1 else { return APILimits.ratioScale }
        return UInt32((fraction * Double(APILimits.ratioScale)).rounded())
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            switch field.number {
            case 1: cpuPPM = try field.ratio()
            case 2: memoryPPM = try field.ratio()
            default: continue
            }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        writer.put(1, cpuPPM)
        writer.put(2, memoryPPM)
    }
}

/// The idle weight `w = cpuWeight × cpuIdle + memWeight × memIdle` (DESIGN.md §1) that picks a
/// cluster's leader, the acting leader and the member that sends the second instruction.
///
/// Weights are non-negative integers and the arithmetic is exact (ppm × weight), so every node
/// ranks the same agents the same way; ties go to the smaller agent id (byte order).
public struct IdleWeights: Hashable, Sendable, CustomStringConvertible {
    public var cpu: UInt32
    public var memory: UInt32

    /// 0.6 and 0.4 as integer parts: CPU counts more, since serving chunks (hashing, TLS) is
    /// CPU-bound. The same order as the coordinator's default weights (services.md §2.3).
    public static let `default` = IdleWeights(cpu: 3, memory: 2)

    public init(cpu: UInt32, memory: UInt32) {
        self.cpu = cpu
        self.memory = memory
    }

    /// The weight in "ppm × weight" units: divide by `(cpu + memory) × 1e6` for a value in [0, 1].
    public func weight(of idle: IdleRatios) -> UInt64 {
        UInt64(cpu) * UInt64(idle.cpuPPM) + UInt64(memory) * UInt64(idle.memoryPPM)
    }

    /// The weight normalized to [0, 1], for display only (never for ranking).
    public func normalizedWeight(of idle: IdleRatios) -> Double {
        let total = UInt64(cpu) + UInt64(memory)
        guard total > 0 else { return 0 }
        return Double(weight(of: idle)) / (Double(total) * Double(APILimits.ratioScale))
    }

    /// True when agent `a` ranks before agent `b`: higher weight, then smaller id.
    public func ranks(_ a: (id: String, idle: IdleRatios), before b: (id: String, idle: IdleRatios)) -> Bool {
        let wa = weight(of: a.idle), wb = weight(of: b.idle)
        if wa != wb { return wa > wb }
        return a.id.utf8.lexicographicallyPrecedes(b.id.utf8)
    }

    /// The id of the best-ranked candidate, or nil if there is none.
    public func best(of candidates: some Sequence<(id: String, idle: IdleRatios)>) -> String? {
        var best: (id: String, idle: IdleRatios)?
        for candidate in candidates where best.map({ ranks(candidate, before: $0) }) ?? true {
            best = candidate
        }
        return best?.id
    }

    public var description: String { "cpu×\(cpu) + mem×\(memory)" }
}
