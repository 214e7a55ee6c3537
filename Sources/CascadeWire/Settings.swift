/// A setting identifier (wire.md §6). A struct so unknown ids can be carried
/// through and ignored rather than rejected.
public struct SettingID: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public init(_ rawValue: UInt16) { self.rawValue = rawValue }

    public static let maxFrameSize = SettingID(0x1)
    public static let initialStreamWindow = SettingID(0x2)
    public static let maxConcurrentStreams = SettingID(0x3)
    public static let maxHeaderSize = SettingID(0x4)
    public static let maxMessageSize = SettingID(0x5)
    public static let initialConnectionWindow = SettingID(0x6)

    public static let known: [SettingID] = [
        .maxFrameSize, .initialStreamWindow, .maxConcurrentStreams,
        .maxHeaderSize, .maxMessageSize, .initialConnectionWindow,
    ]

    public var isKnown: Bool { rawValue >= 0x1 && rawValue <= 0x6 }

    public var name: String {
        switch rawValue {
        case 0x1: "MAX_FRAME_SIZE"
        case 0x2: "INITIAL_STREAM_WINDOW"
        case 0x3: "MAX_CONCURRENT_STREAMS"
        case 0x4: "MAX_HEADER_SIZE"
        case 0x5: "MAX_MESSAGE_SIZE"
        case 0x6: "INITIAL_CONNECTION_WINDOW"
        default: "UNKNOWN_SETTING_0x" + String(rawValue, radix: 16)
        }
    }

    public var defaultValue: UInt32? {
        switch rawValue {
        case 0x1: 16_384
        case 0x2: 1_048_576
        case 0x3: 100
        case 0x4: 16_384
        case 0x5: 4_194_304
        case 0x6: 1_048_576
        default: nil
        }
    }

    /// Inclusive range of legal values; nil for unknown ids (any value, ignored).
    public var bounds: ClosedRange<UInt32>? {
        switch rawValue {
        case 0x1: 16_384...16_777_215
        case 0x2: 0...0x7FFF_FFFF
        case 0x3: 0...0x7FFF_FFFF
        case 0x4: 1_024...1_048_576
        case 0x5: 1_024...67_108_864
        case 0x6: 65_535...0x7FFF_FFFF
        default: nil
        }
    }

    /// Window settings fail with FLOW_CONTROL_ERROR (as in HTTP/2), others with PROTOCOL_ERROR.
    public var violationCode: ErrorCode {
        self == .initialStreamWindow || self == .initialConnectionWindow ? .flowControlError : .protocolError
    }

    public var description: String { name }
}

/// One SETTINGS entry: UInt16 id, UInt32 value (6 bytes on the wire).
public struct Setting: Hashable, Sendable, CustomStringConvertible {
    public static let encodedSize = 6

    public var id: SettingID
    public var value: UInt32

    public init(_ id: SettingID, _ value: UInt32) {
        self.id = id
        self.value = value
    }

    /// Throws if a known setting is outside its bounds; unknown ids always pass.
    public func validate() throws(WireError) {
        guard let bounds = id.bounds, !bounds.contains(value) else { return }
        throw WireError(.badSettingValue, code: id.violationCode,
                        "\(id.name) value \(value) is outside the allowed range \(bounds.lowerBound)...\(bounds.upperBound)")
    }

    public var description: String { "\(id.name)=\(value)" }
}

/// The limits one endpoint advertises. Before the peer's SETTINGS arrives an
/// endpoint assumes the peer uses these defaults (wire.md §6).
public struct Settings: Hashable, Sendable {
    /// Largest frame payload the advertiser accepts.
    public var maxFrameSize = 16_384
    /// Initial flow-control window of every stream, for data sent to the advertiser.
    public var initialStreamWindow = 1_048_576
    /// Streams the peer may have open toward the advertiser at once.
    public var maxConcurrentStreams = 100
    /// Largest HEADERS/TRAILERS payload the advertiser accepts.
    public var maxHeaderSize = 16_384
    /// Largest single RPC message the advertiser accepts (enforced by rpc.md).
    public var maxMessageSize = 4_194_304
    /// Initial connection-level window; only the first SETTINGS frame's value counts.
    public var initialConnectionWindow = 1_048_576

    public init() {}

    public static let defaults = Settings()

    /// The current value of a known setting, nil for unknown ids.
    public func value(of id: SettingID) -> Int? {
        switch id {
        case .maxFrameSize: maxFrameSize
        case .initialStreamWindow: initialStreamWindow
        case .maxConcurrentStreams: maxConcurrentStreams
        case .maxHeaderSize: maxHeaderSize
        case .maxMessageSize: maxMessageSize
        case .initialConnectionWindow: initialConnectionWindow
        default: nil
        }
    }

    /// Applies entries in order (a later duplicate wins). All entries are
    /// validated first, so on error nothing has changed. Unknown ids are ignored.
    public mutating func apply(_ entries: [Setting]) throws(WireError) {
        for entry in entries { try entry.validate() }
        for entry in entries {
            let value = Int(entry.value)
            switch entry.id {
            case .maxFrameSize: maxFrameSize = value
            case .initialStreamWindow: initialStreamWindow = value
            case .maxConcurrentStreams: maxConcurrentStreams = value
            case .maxHeaderSize: maxHeaderSize = value
            case .maxMessageSize: maxMessageSize = value
            case .initialConnectionWindow: initialConnectionWindow = value
            default: continue
            }
        }
    }

    /// The entries to advertise these settings, in id order. Values are clamped
    /// into their bounds so a misconfigured struct still encodes a legal frame.
    public func entries(omittingDefaults: Bool = false) -> [Setting] {
        SettingID.known.compactMap { id in
            guard let current = value(of: id), let bounds = id.bounds else { return nil }
            let clamped = min(max(UInt32(clamping: current), bounds.lowerBound), bounds.upperBound)
            if omittingDefaults && clamped == id.defaultValue { return nil }
            return Setting(id, clamped)
        }
    }
}
