import Foundation

/// Hand-written SVG charts of a ``BenchReport`` (no dependencies).
public enum BenchCharts {
    static let saveColor = "#2f6db5"
    static let loadColor = "#e8771e"
    static let copyColor = "#3a9a5b"
    static let rawColor = "#444444"
    static let gridColor = "#e3e3e3"
    static let mutedText = "#555555"

    static func color(_ direction: ScenarioDirection) -> String {
        switch direction {
        case .save: saveColor
        case .load: loadColor
        case .copy: copyColor
        }
    }

    // MARK: Throughput

    /// Horizontal bars of throughput per scenario, saves, loads and consolidations in separate
    /// sections, each with a dashed line at the raw device's write, read or copy bandwidth. Each bar has
    /// `class="bar"`.
    public static func throughput(_ report: BenchReport) -> String {
        let width = 980.0
        let font = 13.0
        let rowHeight = 30.0
        let sectionHeader = 30.0
        let sections: [(ScenarioDirection, [ScenarioResult])] = [ScenarioDirection.save, .load, .copy].compactMap { direction in
            let rows = report.scenarios.filter { $0.direction == direction }
            return rows.isEmpty ? nil : (direction, rows)
        }
        let labelWidth = max(140, report.scenarios.map { SVGCanvas.textWidth($0.name, size: font) }.max() ?? 0)
        let plotLeft = 24 + labelWidth + 14
        let valueLabelWidth = SVGCanvas.textWidth("00.00 GB/s · 100%", size: 12) + 16
        let plotRight = width - valueLabelWidth - 12
        let top = 96.0
        let rowsHeight = sections.reduce(0.0) { $0 + sectionHeader + Double($1.1.count) * rowHeight }
        let plotBottom = top + max(rowsHeight, rowHeight)
        let height = plotBottom + 70

        var candidates = report.scenarios.map(\.throughputGBps)
        if let raw = report.rawDevice {
            candidates.append(contentsOf: [raw.writeGBps, raw.readGBps, raw.copyGBps].compactMap { $0 })
        }
        let scale = NiceScale(maximum: candidates.max() ?? 1)
        func x(_ value: Double) -> Double { plotLeft + (plotRight - plotLeft) * min(value, scale.maximum) / scale.maximum }

        var svg = SVGCanvas(width: width, height: height)
        svg.text("Checkpoint throughput per scenario", x: 24, y: 32, size: 20, weight: "bold")
        svg.text(subtitle(report), x: 24, y: 54, size: 12.5, fill: mutedText)
        var items: [(String, String, Bool)] = []
        if report.scenarios.contains(where: { $0.direction == .save }) { items.append(("save", saveColor, false)) }
        if report.scenarios.contains(where: { $0.direction == .load }) { items.append(("load", loadColor, false)) }
        if report.scenarios.contains(where: { $0.direction == .copy }) { items.append(("consolidation", copyColor, false)) }
        if report.rawDevice != nil { items.append(("raw device, first probe (% against the probe alongside each repeat)", rawColor, true)) }
        legend(&svg, x: 24, y: 78, items: items)

        for tick in scale.ticks {
            svg.line(x1: x(tick), y1: top - 6, x2: x(tick), y2: plotBottom, stroke: gridColor)
            svg.text(scale.label(tick), x: x(tick), y: plotBottom + 18, size: 12, anchor: .middle, fill: mutedText)
        }
        svg.line(x1: plotLeft, y1: top - 6, x2: plotLeft, y2: plotBottom, stroke: "#999999")
        svg.text(
            "throughput, GB/s (decimal: 1 GB = 10^9 bytes; median of \(report.options.repeats) repeat\(report.options.repeats == 1 ? "" : "s"))",
            x: (plotLeft + plotRight) / 2, y: plotBottom + 42, size: 13, anchor: .middle)

        var y = top
        for (direction, rows) in sections {
            let color = Self.color(direction)
            let title = switch direction {
            case .save: "Saves"
            case .load: "Loads"
            case .copy: "Consolidations"
            }
            svg.text(title, x: 24, y: y + 19, size: 14, weight: "bold", fill: color)
            let sectionTop = y
            if let raw = report.rawDevice?.gigabytesPerSecond(for: direction), raw > 0 {
                // Drawn before the bars so the value labels' halos sit on top of it.
                let lineX = x(raw)
                svg.line(
                    x1: lineX, y1: sectionTop + sectionHeader - 4, x2: lineX,
                    y2: sectionTop + sectionHeader + Double(rows.count) * rowHeight, stroke: rawColor, width: 2,
                    dash: "6 4", cssClass: "raw-line")
                let label = "raw \(direction.rawMeasurement) \(ByteFormat.rate(raw))"
                let labelWidth = SVGCanvas.textWidth(label, size: 12)
                let fitsRight = lineX + 6 + labelWidth <= width - 8
                svg.boxedText(
                    label, x: fitsRight ? lineX + 6 : lineX - 6, y: sectionTop + 19, size: 12,
                    anchor: fitsRight ? .start : .end, fill: rawColor, weight: "bold")
            }
            y += sectionHeader
            for scenario in rows {
                let barTop = y + (rowHeight - 18) / 2
                svg.text(scenario.name, x: plotLeft - 10, y: y + rowHeight / 2 + 4.5, size: font, anchor: .end)
                let end = x(scenario.throughputGBps)
                svg.rect(
                    x: plotLeft, y: barTop, width: end - plotLeft, height: 18, fill: color, cssClass: "bar",
                    title: "\(scenario.name): \(ByteFormat.rate(scenario.throughputGBps))", rx: 2)
                var label = ByteFormat.rate(scenario.throughputGBps)
                if let ratio = scenario.rawDeviceRatio { label += String(format: " · %.0f%%", ratio * 100) }
                svg.boxedText(label, x: end + 6, y: y + rowHeight / 2 + 4.5, size: 12)
                y += rowHeight
            }
        }
        if sections.isEmpty {
            svg.text("no scenarios in this run", x: (plotLeft + plotRight) / 2, y: top + 20, size: 14, anchor: .middle)
        }
        return svg.render()
    }

    // MARK: Memory

    /// Horizontal grouped bars of peak RSS and peak extra memory per scenario (plus engine buffer
    /// peaks when recorded), with the model state size marked. Bars have `class="bar-rss"`,
    /// `class="bar-extra"` and `class="bar-buffers"`.
    public static func memory(_ report: BenchReport) -> String {
        let width = 980.0
        let font = 13.0
        let scenarios = report.scenarios
        let showBuffers = scenarios.contains { $0.engineBufferPeakBytes != nil }
        let barsPerRow = showBuffers ? 3.0 : 2.0
        let barHeight = 11.0
        let rowHeight = barsPerRow * (barHeight + 2) + 14
        let labelWidth = max(140, scenarios.map { SVGCanvas.textWidth($0.name, size: font) }.max() ?? 0)
        let plotLeft = 24 + labelWidth + 14
        let plotRight = width - 110
        let top = 96.0
        let plotBottom = top + max(1, Double(scenarios.count)) * rowHeight
        let height = plotBottom + 70

        let state = report.workload.totalBytes
        let maxBytes = scenarios.flatMap { [$0.peakRSSBytes, $0.peakExtraBytes, $0.engineBufferPeakBytes].compactMap { $0 } }
            .max() ?? 0
        let useGiB = max(maxBytes, state) >= 1 << 30
        let unit = useGiB ? Double(1 << 30) : Double(1 << 20)
        let unitName = useGiB ? "GiB" : "MiB"
        let scale = NiceScale(maximum: Double(max(maxBytes, state)) / unit)
        func x(_ bytes: Int) -> Double {
            plotLeft + (plotRight - plotLeft) * min(Double(bytes) / unit, scale.maximum) / scale.maximum
        }

        var svg = SVGCanvas(width: width, height: height)
        svg.text("Peak memory per scenario", x: 24, y: 32, size: 20, weight: "bold")
        svg.text(
            subtitle(report),
            x: 24, y: 54, size: 12.5, fill: mutedText)
        var items: [(String, String, Bool)] = [
            ("peak RSS (process)", "#4c78a8", false), ("peak extra (over RSS at scenario start)", "#f58518", false),
        ]
        if showBuffers { items.append(("engine buffers", "#54a24b", false)) }
        items.append(("model state \(ByteFormat.binary(state))", "#c23b3b", true))
        legend(&svg, x: 24, y: 78, items: items)

        for tick in scale.ticks {
            let tx = plotLeft + (plotRight - plotLeft) * tick / scale.maximum
            svg.line(x1: tx, y1: top - 4, x2: tx, y2: plotBottom, stroke: gridColor)
            svg.text(scale.label(tick), x: tx, y: plotBottom + 18, size: 12, anchor: .middle, fill: mutedText)
        }
        svg.line(x1: plotLeft, y1: top - 4, x2: plotLeft, y2: plotBottom, stroke: "#999999")
        svg.text("memory, \(unitName) (binary: 1 \(unitName) = 2^\(useGiB ? 30 : 20) bytes)",
            x: (plotLeft + plotRight) / 2, y: plotBottom + 42, size: 13, anchor: .middle)

        if state > 0 {
            let sx = x(state)
            svg.line(x1: sx, y1: top - 4, x2: sx, y2: plotBottom, stroke: "#c23b3b", width: 2, dash: "6 4",
                cssClass: "state-line")
        }
        var y = top
        for scenario in scenarios {
            svg.text(scenario.name, x: plotLeft - 10, y: y + rowHeight / 2 + 4.5, size: font, anchor: .end)
            var barTop = y + 7
            let bars: [(Int?, String, String)] = [
                (scenario.peakRSSBytes, "#4c78a8", "bar-rss"),
                (scenario.peakExtraBytes, "#f58518", "bar-extra"),
            ] + (showBuffers ? [(scenario.engineBufferPeakBytes, "#54a24b", "bar-buffers")] : [])
            for (value, color, cssClass) in bars {
                if let value {
                    let end = x(value)
                    svg.rect(x: plotLeft, y: barTop, width: end - plotLeft, height: barHeight, fill: color,
                        cssClass: cssClass, title: "\(scenario.name): \(ByteFormat.binary(value))", rx: 1.5)
                    svg.boxedText(ByteFormat.binary(value), x: end + 5, y: barTop + barHeight - 1.5, size: 11)
                } else if cssClass != "bar-buffers" {
                    svg.text("not measured", x: plotLeft + 5, y: barTop + barHeight - 1.5, size: 11, fill: "#888888")
                }
                barTop += barHeight + 2
            }
            y += rowHeight
        }
        if scenarios.isEmpty {
            svg.text("no scenarios in this run", x: (plotLeft + plotRight) / 2, y: top + 20, size: 14, anchor: .middle)
        }
        return svg.render()
    }

    // MARK: Rank sweep

    /// Lines of sharded save and load throughput versus rank count, with the raw device's write
    /// and read bandwidth as dashed lines. Each line has `class="series-save"` / `class="series-load"`.
    public static func ranks(_ report: BenchReport) -> String {
        let width = 860.0
        let height = 480.0
        let plotLeft = 78.0
        let plotRight = width - 170
        let top = 100.0
        let plotBottom = height - 70
        let points = report.rankSweep.sorted { $0.ranks < $1.ranks }

        var svg = SVGCanvas(width: width, height: height)
        svg.text("Throughput versus ranks", x: 24, y: 32, size: 20, weight: "bold")
        svg.text("sharded save by N ranks, then load by the same N; \(subtitle(report))",
            x: 24, y: 54, size: 12.5, fill: mutedText)
        guard !points.isEmpty else {
            svg.text("no rank sweep in this run (pass several rank counts, e.g. --ranks 1,2,4,8)",
                x: (plotLeft + plotRight) / 2, y: (top + plotBottom) / 2, size: 14, anchor: .middle, fill: mutedText)
            return svg.render()
        }
        var items: [(String, String, Bool)] = [("save", saveColor, false), ("load", loadColor, false)]
        if report.rawDevice != nil { items.append(("raw device write / read", rawColor, true)) }
        legend(&svg, x: 24, y: 78, items: items)
        var candidates = points.flatMap { [$0.save?.throughputGBps, $0.load?.throughputGBps].compactMap { $0 } }
        if let raw = report.rawDevice { candidates.append(contentsOf: [raw.writeGBps, raw.readGBps].compactMap { $0 }) }
        let scale = NiceScale(maximum: candidates.max() ?? 1)
        func y(_ value: Double) -> Double { plotBottom - (plotBottom - top) * min(value, scale.maximum) / scale.maximum }
        let slot = (plotRight - plotLeft) / Double(points.count)
        func x(_ index: Int) -> Double { plotLeft + slot * (Double(index) + 0.5) }

        for tick in scale.ticks {
            svg.line(x1: plotLeft, y1: y(tick), x2: plotRight, y2: y(tick), stroke: gridColor)
            svg.text(scale.label(tick), x: plotLeft - 8, y: y(tick) + 4, size: 12, anchor: .end, fill: mutedText)
        }
        svg.line(x1: plotLeft, y1: plotBottom, x2: plotRight, y2: plotBottom, stroke: "#999999")
        for (index, point) in points.enumerated() {
            svg.line(x1: x(index), y1: plotBottom, x2: x(index), y2: plotBottom + 5, stroke: "#999999")
            svg.text(String(point.ranks), x: x(index), y: plotBottom + 20, size: 13, anchor: .middle)
        }
        svg.text("ranks", x: (plotLeft + plotRight) / 2, y: plotBottom + 46, size: 13, anchor: .middle)
        svg.text("GB/s (decimal)", x: 24, y: (top + plotBottom) / 2, size: 13, anchor: .middle, rotate: -90)

        // Raw device lines, labels pushed apart when close.
        if let raw = report.rawDevice {
            var labels: [(String, Double)] = []
            if let write = raw.writeGBps { labels.append(("raw write \(String(format: "%.2f", write))", y(write))) }
            if let read = raw.readGBps { labels.append(("raw read \(String(format: "%.2f", read))", y(read))) }
            for (_, lineY) in labels {
                svg.line(x1: plotLeft, y1: lineY, x2: plotRight, y2: lineY, stroke: rawColor, width: 1.5, dash: "6 4",
                    cssClass: "raw-line")
            }
            labels.sort { $0.1 < $1.1 }
            if labels.count == 2, labels[1].1 - labels[0].1 < 16 {
                let middle = (labels[0].1 + labels[1].1) / 2
                labels[0].1 = middle - 8
                labels[1].1 = middle + 8
            }
            for (text, lineY) in labels {
                svg.text(text, x: plotRight + 8, y: lineY + 4, size: 12, fill: rawColor)
            }
        }

        let save = points.enumerated().compactMap { index, point in point.save.map { (index, $0.throughputGBps) } }
        let load = points.enumerated().compactMap { index, point in point.load.map { (index, $0.throughputGBps) } }
        svg.polyline(points: save.map { (x($0.0), y($0.1)) }, stroke: saveColor, cssClass: "series-save")
        svg.polyline(points: load.map { (x($0.0), y($0.1)) }, stroke: loadColor, cssClass: "series-load")
        for (index, point) in points.enumerated() {
            let saveValue = point.save?.throughputGBps
            let loadValue = point.load?.throughputGBps
            for (value, other, color, name) in [
                (saveValue, loadValue, saveColor, "save"), (loadValue, saveValue, loadColor, "load"),
            ] {
                guard let value else { continue }
                let above = other.map { value >= $0 } ?? true
                svg.circle(cx: x(index), cy: y(value), r: 5, fill: color,
                    title: "\(name), \(point.ranks) ranks: \(ByteFormat.rate(value))")
                svg.text(String(format: "%.2f", value), x: x(index), y: above ? y(value) - 11 : y(value) + 21,
                    size: 12, anchor: .middle, weight: "bold", fill: color, halo: true)
            }
        }
        return svg.render()
    }

    // MARK: Helpers

    static func subtitle(_ report: BenchReport) -> String {
        var parts = ["\(ByteFormat.binary(report.workload.totalBytes)) state"]
        if let fs = report.machine.storage?.fileSystemType { parts.append(fs) }
        parts.append("\(report.machine.logicalCores) cores")
        parts.append(report.options.ioMode.rawValue + " I/O")
        parts.append(report.provenance.buildConfiguration)
        parts.append(report.provenance.date)
        return parts.joined(separator: ", ")
    }

    static func legend(_ svg: inout SVGCanvas, x: Double, y: Double, items: [(String, String, Bool)]) {
        var cursor = x
        for (label, color, dashed) in items {
            if dashed {
                svg.line(x1: cursor, y1: y - 4, x2: cursor + 22, y2: y - 4, stroke: color, width: 2, dash: "6 4")
            } else {
                svg.rect(x: cursor, y: y - 10, width: 22, height: 12, fill: color, rx: 2)
            }
            svg.text(label, x: cursor + 28, y: y + 1, size: 12.5)
            cursor += 28 + SVGCanvas.textWidth(label, size: 12.5) + 22
        }
    }
}
