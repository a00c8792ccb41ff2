import Foundation
import Testing

#if canImport(FoundationXML)
import FoundationXML
#endif

@testable import CkptBench

/// Counts elements by tag and by class while checking the document parses.
final class SVGInspector: NSObject, XMLParserDelegate {
    var tags: [String: Int] = [:]
    var classes: [String: Int] = [:]
    var texts: [String] = []
    private var current = ""

    func parser(
        _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName: String?,
        attributes: [String: String] = [:]
    ) {
        tags[elementName, default: 0] += 1
        if let cssClass = attributes["class"] { classes[cssClass, default: 0] += 1 }
        current = ""
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) { current += string }

    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName: String?) {
        if elementName == "text" { texts.append(current) }
    }

    static func inspect(_ svg: String) -> SVGInspector? {
        let inspector = SVGInspector()
        let parser = XMLParser(data: Data(svg.utf8))
        parser.delegate = inspector
        return parser.parse() ? inspector : nil
    }
}

@Suite struct OutputTests {
    @Test func jsonRoundTrips() throws {
        let report = Sample.report()
        let data = try report.jsonData()
        let decoded = try BenchReport.decode(jsonData: data)
        #expect(decoded == report)
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains("\"throughputGBps\""))
        #expect(text.contains("\"rawDeviceRatio\""))
        #expect(text.contains("1 GB = 1e9 bytes"))
        // Sorted keys: stable output.
        #expect(try report.jsonData() == data)
        let formatVersion = try #require(text.range(of: "\"formatVersion\""))
        let machine = try #require(text.range(of: "\"machine\""))
        #expect(formatVersion.lowerBound < machine.lowerBound)
    }

    @Test func tableShowsTheFigures() {
        let report = Sample.report()
        let table = ResultsTable.render(report)
        for scenario in report.scenarios {
            #expect(table.contains(scenario.name))
            #expect(table.contains(String(format: "%.2f", scenario.throughputGBps)))
            if let ratio = scenario.rawDeviceRatio { #expect(table.contains(String(format: "%.0f%%", ratio * 100))) }
        }
        #expect(table.contains("read 1.50x needed"))
        #expect(table.contains("caller blocked 0.110 s"))
        #expect(table.contains("gather 3.100 s + write 6.400 s"))
        #expect(table.contains("4->3 ranks"))
        #expect(table.contains("raw device: write"))
        // Rows are aligned: the GB/s column is right-aligned under its header.
        let lines = table.split(separator: "\n").map(String.init)
        guard let header = lines.first(where: { $0.hasPrefix("scenario") }),
            let column = header.range(of: "GB/s")
        else {
            Issue.record("no header in\n\(table)")
            return
        }
        let end = header.distance(from: header.startIndex, to: column.upperBound)
        for scenario in report.scenarios {
            guard let line = lines.first(where: { $0.hasPrefix(scenario.name + " ") }) else {
                Issue.record("no row for \(scenario.name)")
                continue
            }
            #expect(String(line.prefix(end)).hasSuffix(String(format: "%.2f", scenario.throughputGBps)))
        }
    }

    @Test func markdownHasHeadlinesTableCommandAndCharts() {
        let report = Sample.report()
        let markdown = MarkdownSummary.render(report)
        #expect(markdown.contains("Fastest save: **save sharded 4r**"))
        #expect(markdown.contains("Fastest load: **load 4->4**"))
        // A consolidation reads and writes: compared with the raw copy (1.95 s), not the write.
        #expect(markdown.contains("Fastest consolidation: **consolidate torch.save**"))
        #expect(markdown.contains("(93% of a raw copy)"))
        #expect(markdown.contains("![Throughput per scenario](throughput.svg)"))
        #expect(markdown.contains("ranks.svg"))
        #expect(markdown.contains("ckpt-bench --ranks 1,2,4,8 --out 'my results'"))
        #expect(markdown.contains("AMD EPYC"))
        #expect(markdown.contains("ext4"))
        for scenario in report.scenarios {
            #expect(markdown.contains("| \(scenario.name) | \(String(format: "%.2f", scenario.throughputGBps)) |"))
        }
        let prefixed = MarkdownSummary.render(report, linkPrefix: "run1/")
        #expect(prefixed.contains("(run1/memory.svg)"))
        #expect(!MarkdownSummary.render(Sample.report(sweep: false)).contains("ranks.svg"))
    }

    @Test func svgChartsAreWellFormedWithOneBarPerScenario() throws {
        for report in [Sample.report(), Sample.report(sweep: false, raw: false)] {
            let throughput = try #require(SVGInspector.inspect(BenchCharts.throughput(report)))
            #expect(throughput.classes["bar"] == report.scenarios.count)
            #expect(throughput.classes["raw-line"] == (report.rawDevice == nil ? nil : 3))
            #expect(throughput.texts.contains { $0.contains("raw write") } == (report.rawDevice != nil))
            #expect(throughput.texts.contains { $0.contains("raw copy") } == (report.rawDevice != nil))
            #expect(throughput.texts.contains("Consolidations"))

            let memory = try #require(SVGInspector.inspect(BenchCharts.memory(report)))
            #expect(memory.classes["bar-rss"] == report.scenarios.count)
            #expect(memory.classes["bar-extra"] == report.scenarios.count)
            #expect(memory.classes["state-line"] == 1)

            let ranks = try #require(SVGInspector.inspect(BenchCharts.ranks(report)))
            if report.rankSweep.isEmpty {
                #expect(ranks.texts.contains { $0.contains("no rank sweep") })
            } else {
                #expect(ranks.classes["series-save"] == 1)
                #expect(ranks.classes["series-load"] == 1)
                #expect(ranks.tags["circle"] == 2 * report.rankSweep.count)
            }
        }
    }

    @Test func svgEscapesText() throws {
        var report = Sample.report()
        report.scenarios[0].name = "save <a & b> \"q\""
        let svg = BenchCharts.throughput(report)
        let inspector = try #require(SVGInspector.inspect(svg))
        #expect(inspector.texts.contains("save <a & b> \"q\""))
    }

    @Test func niceScaleTicks() {
        let scale = NiceScale(maximum: 1.73)
        #expect(scale.maximum >= 1.73)
        #expect(scale.step == 0.5)
        #expect(scale.ticks == [0, 0.5, 1, 1.5, 2])
        #expect(NiceScale(maximum: 0).maximum > 0)
        #expect(NiceScale(maximum: 2300).step == 500)
    }

    @Test func writerCreatesRunDirectoryAndIndex() throws {
        let root = NSTemporaryDirectory() + "ckpt-bench-test-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let writer = ResultsWriter(outputDirectory: root)
        let date = Date(timeIntervalSince1970: 1_795_000_000)
        let first = try writer.write(Sample.report(), label: "unit test", date: date)
        let second = try writer.write(Sample.report(), label: "unit test", date: date)
        #expect(first.directory != second.directory)
        #expect(first.directory.hasSuffix("-unit-test"))
        for file in ["result.json", "summary.md", "throughput.svg", "memory.svg", "ranks.svg"] {
            #expect(FileManager.default.fileExists(atPath: first.directory + "/" + file))
        }
        let json = try Data(contentsOf: URL(fileURLWithPath: first.directory + "/result.json"))
        #expect(try BenchReport.decode(jsonData: json) == Sample.report())
        let index = try String(contentsOfFile: root + "/index.md", encoding: .utf8)
        #expect(index.components(separatedBy: "](").count == 3)
        let latest = try String(contentsOfFile: root + "/latest.md", encoding: .utf8)
        let secondName = URL(fileURLWithPath: second.directory).lastPathComponent
        #expect(latest.contains("(\(secondName)/throughput.svg)"))
    }
}
