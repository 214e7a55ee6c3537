import CascadeMetrics
import CascadeTestSupport
import Foundation
import Testing

@Suite("Prometheus exposition")
struct ExpositionTests {
    /// A scrape with every kind of family and label values that need escaping.
    static func sample() -> String {
        var out = ExpositionWriter()
        out.counter("cascade_things_total", help: "Things.\nSecond line with a \\ backslash.", 42)
        let labeled = LabeledCounter(labels: ["release", "source"])
        labeled.add(5, "1.1", "coordinator")
        labeled.add(7, "quote\"back\\slash\nnewline", "esc\u{1B}[31mred")
        out.counter("cascade_bytes_total", help: "Bytes by release.", labeled)
        out.gauge("cascade_ratio", help: "A fraction.", 0.125)
        out.family("cascade_special", .gauge, help: "Special values.", labels: ["kind"],
                   values: [(["inf"], .infinity), (["ninf"], -.infinity), (["nan"], .nan), (["big"], 1e300), (["small"], 1.5e-7)])
        let histogram = LabeledHistogram(labels: ["method"], bounds: [0.01, 0.1, 1])
        for value in [0.005, 0.05, 0.05, 0.5, 5] { histogram.observe(value, "a") }
        histogram.observe(0.001, "b")
        out.histogram("cascade_latency_seconds", help: "Latency.", histogram)
        return out.text
    }

    @Test("counters, gauges and histograms are written in the format and read back by our parser, escapes and all")
    func roundTrip() throws {
        let scrape = try PrometheusScrape(parsing: Self.sample())
        #expect(scrape.value("cascade_things_total") == 42)
        #expect(scrape.family("cascade_things_total")?.help == "Things.\nSecond line with a \\ backslash.")
        #expect(scrape.family("cascade_things_total")?.type == "counter")
        #expect(scrape.value("cascade_bytes_total", ["release": "1.1", "source": "coordinator"]) == 5)
        // The format escapes \, " and newline; a control character it cannot escape is replaced.
        #expect(scrape.value("cascade_bytes_total", ["release": "quote\"back\\slash\nnewline", "source": "esc\u{FFFD}[31mred"]) == 7)
        #expect(!Self.sample().contains("\u{1B}"))
        #expect(scrape.value("cascade_ratio") == 0.125)
        #expect(scrape.value("cascade_special", ["kind": "inf"]) == .infinity)
        #expect(scrape.value("cascade_special", ["kind": "ninf"]) == -.infinity)
        #expect(scrape.value("cascade_special", ["kind": "nan"])?.isNaN == true)
        #expect(scrape.value("cascade_special", ["kind": "big"]) == 1e300)
        #expect(scrape.value("cascade_special", ["kind": "small"]) == 1.5e-7)
        // Buckets are cumulative; +Inf is the count; the sum is the sum.
        #expect(scrape.value("cascade_latency_seconds_bucket", ["method": "a", "le": "0.01"]) == 1)
        #expect(scrape.value("cascade_latency_seconds_bucket", ["method": "a", "le": "0.1"]) == 3)
        #expect(scrape.value("cascade_latency_seconds_bucket", ["method": "a", "le": "1"]) == 4)
        #expect(scrape.value("cascade_latency_seconds_bucket", ["method": "a", "le": "+Inf"]) == 5)
        #expect(scrape.value("cascade_latency_seconds_count", ["method": "a"]) == 5)
        #expect(abs((scrape.value("cascade_latency_seconds_sum", ["method": "a"]) ?? 0) - 5.605) < 1e-9)
        #expect(scrape.value("cascade_latency_seconds_count", ["method": "b"]) == 1)
        #expect(scrape.order == ["cascade_things_total", "cascade_bytes_total", "cascade_ratio", "cascade_special", "cascade_latency_seconds"])
    }

    @Test("a family is written once; labelled series past the cap are counted as other")
    func onceAndCapped() throws {
        var out = ExpositionWriter()
        out.counter("cascade_x_total", help: "x", 1)
        out.counter("cascade_x_total", help: "x again", 2)
        #expect(out.text.components(separatedBy: "# TYPE cascade_x_total").count == 2)
        let capped = LabeledCounter(labels: ["method"], maxSeries: 3)
        for method in ["a", "b", "c", "d", "e"] { capped.add(1, method) }
        #expect(capped.snapshot.map(\.labels) == [["a"], ["b"], ["c"], ["other"]])
        #expect(capped.value("other") == 2)
        #expect(capped.total == 5)
    }

    @Test("our parser refuses what the format does not allow")
    func parserRefuses() {
        let bad = [
            "x{a=\"b\\t\"} 1\n": "an unknown escape",
            "x{a=\"b} 1\n": "an unterminated value",
            "x 1\ny 2\nx 3\n": "a family split in two",
            "x one\n": "a value that is not a number",
            "1x 1\n": "a bad metric name",
            "x{1a=\"b\"} 1\n": "a bad label name",
            "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n": "buckets that are not cumulative",
            "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 1\n": "+Inf that is not the count",
            "x 1": "no final line feed",
            "x 1\n# TYPE x counter\n": "a TYPE after the samples",
        ]
        for (text, what) in bad {
            #expect(throws: PrometheusScrape.ParseError.self, "\(what) must be refused") { try PrometheusScrape(parsing: text) }
        }
    }

    @Test("promtool check metrics accepts our exposition (skipped without promtool)")
    func promtool() async throws {
        guard let promtool = ExternalTool.find(["promtool"]) else {
            print("skipped: promtool is not installed (Debian package prometheus; `make deps TEST_TOOLS=1` installs it as root)")
            return
        }
        let result = try await ExternalTool.run(promtool, ["check", "metrics"], input: Self.sample())
        #expect(result.status == 0, "promtool: \(result.output)\(result.errors)")
    }

    @Test("the process sample comes from /proc and is plausible")
    func processSample() throws {
        let sample = try #require(ProcessSample.current())
        #expect(sample.residentBytes > 1_000_000)
        #expect(sample.virtualBytes >= sample.residentBytes)
        #expect(sample.openFileDescriptors >= 3)
        #expect(sample.maxFileDescriptors >= sample.openFileDescriptors)
        #expect(sample.cpuSeconds >= 0)
        let now = Date().timeIntervalSince1970
        #expect(sample.startTimeSeconds > now - 86_400 && sample.startTimeSeconds <= now + 1)
        // 200 more descriptors open are counted (with room for other tests' sockets meanwhile).
        let before = try #require(ProcessSample.current()).openFileDescriptors
        let opened = (0..<200).map { _ in open("/dev/null", O_RDONLY) }
        defer { for fd in opened { close(fd) } }
        let after = try #require(ProcessSample.current()).openFileDescriptors
        #expect(after - before >= 150 && after - before <= 250, "\(before) → \(after)")
        var out = ExpositionWriter()
        sample.write(to: &out)
        let scrape = try PrometheusScrape(parsing: out.text)
        #expect(scrape.family("process_cpu_seconds_total")?.type == "counter")
        #expect(scrape.value("process_open_fds") == sample.openFileDescriptors)
    }
}
