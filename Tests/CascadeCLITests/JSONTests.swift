import CascadeCLI
import Testing

@Suite("JSON output")
struct JSONTests {
    @Test("Strings escape quotes, backslashes and control characters and keep other Unicode as is")
    func escaping() {
        let value = JSONValue.string("a\"b\\c\n\r\t\u{08}\u{0C}\u{00}\u{1F}\u{7F}/é✓🙂\u{2028}")
        #expect(value.encoded() == #""a\"b\\c\n\r\t\b\f\u0000\u001f\u007f/é✓🙂\u2028""#)
    }

    @Test("Objects keep their key order; compact output has no spaces")
    func compact() {
        let value: JSONValue = ["zeta": 1, "alpha": [true, false, nil], "mid": ["k": "v"], "empty": [], "none": [:]]
        #expect(value.encoded() == #"{"zeta":1,"alpha":[true,false,null],"mid":{"k":"v"},"empty":[],"none":{}}"#)
    }

    @Test("Pretty output indents two spaces")
    func pretty() {
        let value: JSONValue = ["name": "1.1", "clusters": ["a", "b"], "stats": ["done": 3, "empty": []]]
        #expect(value.encoded(pretty: true) == """
        {
          "name": "1.1",
          "clusters": [
            "a",
            "b"
          ],
          "stats": {
            "done": 3,
            "empty": []
          }
        }
        """)
    }

    @Test("Numbers: exact integers, integral doubles without a fraction, non-finite as null")
    func numbers() {
        #expect(JSONValue.int(Int64.max).encoded() == "9223372036854775807")
        #expect(JSONValue.int(UInt64.max).encoded() == "9223372036854775807")
        #expect(JSONValue.double(2).encoded() == "2")
        #expect(JSONValue.double(-0.5).encoded() == "-0.5")
        #expect(JSONValue.double(0.1).encoded() == "0.1")
        #expect(JSONValue.double(1e300).encoded() == "1e+300")
        #expect(JSONValue.double(.nan).encoded() == "null")
        #expect(JSONValue.double(-.infinity).encoded() == "null")
    }

    @Test("Built from pairs and optionals; subscripts read members")
    func building() {
        let rows = [("a", 1), ("b", 2)]
        let value = JSONValue.object(rows.map { ($0.0, JSONValue.int($0.1)) } + [("note", .string(nil as String?))])
        #expect(value.encoded() == #"{"a":1,"b":2,"note":null}"#)
        #expect(value["b"] == .int(2))
        #expect(value["missing"] == nil)
        #expect(JSONValue.array([])["a"] == nil)
    }

    @Test("A handler prints JSON with a trailing newline")
    func printing() async {
        let program = Program(Command("t", summary: "T.", run: { $0.printJSON(["ok": true]) }))
        let captured = CapturedConsole()
        _ = await program.run([], environment: CLIEnvironment(console: captured.console))
        #expect(captured.output == "{\n  \"ok\": true\n}\n")
    }
}
