import CascadeWire
import Testing

@Suite("FramePayload, Settings and ErrorCode")
struct FramePayloadTests {
    @Test("Settings defaults and bounds match the spec table")
    func settingsTable() {
        let settings = Settings()
        #expect(settings.maxFrameSize == 16_384)
        #expect(settings.initialStreamWindow == 1_048_576)
        #expect(settings.maxConcurrentStreams == 100)
        #expect(settings.maxHeaderSize == 16_384)
        #expect(settings.maxMessageSize == 4_194_304)
        #expect(settings.initialConnectionWindow == 1_048_576)
        for id in SettingID.known {
            #expect(settings.value(of: id) == id.defaultValue.map(Int.init))
            #expect(id.bounds?.contains(id.defaultValue ?? 0) == true)
        }
        #expect(SettingID.maxFrameSize.bounds == 16_384...16_777_215)
        #expect(SettingID.initialConnectionWindow.bounds == 65_535...2_147_483_647)
        #expect(SettingID(0x99).bounds == nil)
        #expect(settings.entries(omittingDefaults: true).isEmpty)
        #expect(settings.entries().count == 6)
    }

    @Test("Each known setting accepts both bounds and rejects one past either with its code")
    func settingBounds() {
        for id in SettingID.known {
            let bounds = id.bounds!
            var settings = Settings()
            #expect(wireError { try settings.apply([Setting(id, bounds.lowerBound)]) } == nil)
            #expect(settings.value(of: id) == Int(bounds.lowerBound))
            #expect(wireError { try settings.apply([Setting(id, bounds.upperBound)]) } == nil)
            #expect(settings.value(of: id) == Int(bounds.upperBound))
            var outside: [UInt32] = [bounds.upperBound &+ 1]
            if bounds.lowerBound > 0 { outside.append(bounds.lowerBound - 1) }
            for value in outside {
                let error = wireError { try settings.apply([Setting(id, value)]) }
                #expect(error?.kind == .badSettingValue)
                #expect(error?.code == id.violationCode)
            }
        }
        #expect(SettingID.initialStreamWindow.violationCode == .flowControlError)
        #expect(SettingID.maxFrameSize.violationCode == .protocolError)
    }

    @Test("Applying settings: in order, last duplicate wins, unknown ids ignored, all-or-nothing on error")
    func applySettings() throws {
        var settings = Settings()
        try settings.apply([Setting(.maxConcurrentStreams, 5), Setting(SettingID(0x77), 9), Setting(.maxConcurrentStreams, 7)])
        #expect(settings.maxConcurrentStreams == 7)
        let before = settings
        let error = wireError {
            try settings.apply([Setting(.maxHeaderSize, 2048), Setting(.maxFrameSize, 1)])
        }
        #expect(error?.kind == .badSettingValue)
        #expect(settings == before)
        #expect(error?.message == "MAX_FRAME_SIZE value 1 is outside the allowed range 16384...16777215")
    }

    @Test("Settings survive a SETTINGS frame round trip")
    func settingsFrameRoundTrip() throws {
        var settings = Settings()
        settings.maxFrameSize = 65_536
        settings.maxMessageSize = 1_024
        settings.initialStreamWindow = 0
        let frame = Frame.settings(settings, omittingDefaults: true)
        #expect(frame.payload.count == 18)
        guard case .settings(false, let entries) = try FramePayload(frame) else {
            Issue.record("not a SETTINGS frame")
            return
        }
        var received = Settings()
        try received.apply(entries)
        #expect(received == settings)
    }

    @Test("HEADERS and TRAILERS above MAX_HEADER_SIZE are stream errors LIMIT_EXCEEDED; at the limit they pass")
    func headerLimit() throws {
        let atLimit = [UInt8](repeating: 0, count: 1_024)
        #expect(try FramePayload(.headers(streamID: 9, atLimit), maxHeaderSize: 1_024) == .headers(atLimit, endStream: false))
        for frame in [Frame.headers(streamID: 9, atLimit + [0]), Frame.trailers(streamID: 9, atLimit + [0])] {
            let error = wireError { _ = try FramePayload(frame, maxHeaderSize: 1_024) }
            #expect(error?.kind == .headerTooLarge)
            #expect(error?.code == .limitExceeded)
            #expect(error?.streamID == 9)
            #expect(error?.isConnectionError == false)
        }
    }

    @Test("GOAWAY reasons are capped at 1024 bytes on send and on receive without splitting characters")
    func goawayReason() throws {
        let long = String(repeating: "é", count: 600)  // 1200 bytes
        let frame = Frame.goaway(lastStreamID: 3, code: .noError, reason: long)
        #expect(frame.payload.count == 8 + 1_024)
        guard case .goaway(let last, let code, let reason) = try FramePayload(frame) else {
            Issue.record("not a GOAWAY")
            return
        }
        #expect(last == 3 && code == .noError)
        #expect(reason == String(repeating: "é", count: 512))

        var raw = frame
        raw.payload += [UInt8](repeating: 0x41, count: 100)
        guard case .goaway(_, _, let received) = try FramePayload(raw) else { return }
        #expect(received.utf8.count == 1_024)
    }

    @Test("Convenience constructors parse back to the typed payload they describe")
    func constructors() throws {
        let cases: [(Frame, FramePayload)] = [
            (.data(streamID: 1, [9], endStream: true), .data([9], endStream: true)),
            (.headers(streamID: 3, [1, 2]), .headers([1, 2], endStream: false)),
            (.trailers(streamID: 3, []), .trailers([])),
            (.reset(streamID: 5, code: .refusedStream), .reset(.refusedStream)),
            (.settings([Setting(.maxHeaderSize, 4096)]), .settings(ack: false, [Setting(.maxHeaderSize, 4096)])),
            (.settingsAck, .settings(ack: true, [])),
            (.ping(0x0102_0304_0506_0708, ack: true), .ping(ack: true, 0x0102_0304_0506_0708)),
            (.goaway(lastStreamID: 11, code: .enhanceYourCalm, reason: "slow down"),
             .goaway(lastStreamID: 11, code: .enhanceYourCalm, reason: "slow down")),
            (.windowUpdate(streamID: 0, increment: 1), .windowUpdate(1)),
        ]
        for (frame, payload) in cases {
            #expect(try FramePayload(frame) == payload)
            #expect(Frame(payload, streamID: frame.streamID) == frame)
        }
    }

    @Test("Error codes have spec names; unknown codes keep their number and act as INTERNAL_ERROR")
    func errorCodes() {
        let names = ErrorCode.known.map(\.name)
        #expect(names == ["NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT",
                          "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL", "ENHANCE_YOUR_CALM",
                          "UNSUPPORTED_VERSION", "LIMIT_EXCEEDED"])
        for code in ErrorCode.known {
            #expect(ErrorCode(name: code.name) == code)
            #expect(code.effective == code)
        }
        let unknown = ErrorCode(4242)
        #expect(!unknown.isKnown)
        #expect(unknown.effective == .internalError)
        #expect(unknown.name == "UNKNOWN_4242")
        #expect(Frame.reset(streamID: 1, code: unknown).payload == [0, 0, 0x10, 0x92])
    }

    @Test("Unknown frame types pass through untouched, and known types check stream rules before sizes")
    func unknownAndOrder() throws {
        let odd = Frame(type: FrameType(0xEE), flags: FrameFlags(rawValue: 0xFF), streamID: 0, payload: [1, 2, 3])
        #expect(try FramePayload(odd) == .unknown(odd))
        #expect(FrameType(0xEE).isKnown == false)
        let both = Frame(type: .reset, streamID: 0, payload: [1])
        #expect(wireError { _ = try FramePayload(both) }?.kind == .wrongStream)
    }
}
