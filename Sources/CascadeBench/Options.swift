/// `--name value` options for the benchmark tool; unknown or missing options are errors.
struct Options {
    private var values: [String: String] = [:]
    private var flags: Set<String> = []

    init(_ arguments: ArraySlice<String>, flags known: Set<String> = []) throws(BenchError) {
        var iterator = arguments.makeIterator()
        while let argument = iterator.next() {
            guard argument.hasPrefix("--") else { throw BenchError("unexpected argument \"\(argument)\"") }
            let name = String(argument.dropFirst(2))
            if known.contains(name) {
                flags.insert(name)
                continue
            }
            guard let value = iterator.next() else { throw BenchError("option --\(name) needs a value") }
            values[name] = value
        }
    }

    func string(_ name: String, default fallback: String? = nil) throws(BenchError) -> String {
        guard let value = values[name] ?? fallback else { throw BenchError("missing option --\(name)") }
        return value
    }

    func int(_ name: String, default fallback: Int? = nil) throws(BenchError) -> Int {
        guard let text = values[name] else {
            guard let fallback else { throw BenchError("missing option --\(name)") }
            return fallback
        }
        guard let value = Int(text), value >= 0 else { throw BenchError("--\(name) needs a non-negative integer, not \"\(text)\"") }
        return value
    }

    func flag(_ name: String) -> Bool { flags.contains(name) }
}

public struct BenchError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
