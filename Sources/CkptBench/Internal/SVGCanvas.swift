import Foundation

/// A minimal SVG writer: numbers are printed with one decimal, text is XML-escaped.
struct SVGCanvas {
    let width: Double
    let height: Double
    private(set) var elements: [String] = []

    static let fontFamily = "DejaVu Sans, Helvetica, Arial, sans-serif"

    init(width: Double, height: Double) {
        self.width = width
        self.height = height
    }

    /// Rough width of `text` at `size` px in DejaVu Sans (wide glyphs: 0.6 em average).
    static func textWidth(_ text: String, size: Double) -> Double {
        Double(text.count) * size * 0.6
    }

    mutating func rect(
        x: Double, y: Double, width: Double, height: Double, fill: String, cssClass: String? = nil,
        title: String? = nil, rx: Double = 0
    ) {
        var attributes = "x=\"\(n(x))\" y=\"\(n(y))\" width=\"\(n(max(0, width)))\" height=\"\(n(max(0, height)))\" fill=\"\(fill)\""
        if rx > 0 { attributes += " rx=\"\(n(rx))\"" }
        if let cssClass { attributes += " class=\"\(cssClass)\"" }
        if let title {
            elements.append("<rect \(attributes)><title>\(Self.escape(title))</title></rect>")
        } else {
            elements.append("<rect \(attributes)/>")
        }
    }

    mutating func line(
        x1: Double, y1: Double, x2: Double, y2: Double, stroke: String, width: Double = 1, dash: String? = nil,
        cssClass: String? = nil
    ) {
        var attributes = "x1=\"\(n(x1))\" y1=\"\(n(y1))\" x2=\"\(n(x2))\" y2=\"\(n(y2))\" stroke=\"\(stroke)\" stroke-width=\"\(n(width))\""
        if let dash { attributes += " stroke-dasharray=\"\(dash)\"" }
        if let cssClass { attributes += " class=\"\(cssClass)\"" }
        elements.append("<line \(attributes)/>")
    }

    mutating func polyline(points: [(Double, Double)], stroke: String, width: Double = 2.5, cssClass: String? = nil) {
        let list = points.map { "\(n($0.0)),\(n($0.1))" }.joined(separator: " ")
        var attributes = "points=\"\(list)\" fill=\"none\" stroke=\"\(stroke)\" stroke-width=\"\(n(width))\" stroke-linejoin=\"round\""
        if let cssClass { attributes += " class=\"\(cssClass)\"" }
        elements.append("<polyline \(attributes)/>")
    }

    mutating func circle(cx: Double, cy: Double, r: Double, fill: String, stroke: String = "#ffffff", title: String? = nil) {
        let attributes = "cx=\"\(n(cx))\" cy=\"\(n(cy))\" r=\"\(n(r))\" fill=\"\(fill)\" stroke=\"\(stroke)\" stroke-width=\"1.5\""
        if let title {
            elements.append("<circle \(attributes)><title>\(Self.escape(title))</title></circle>")
        } else {
            elements.append("<circle \(attributes)/>")
        }
    }

    enum Anchor: String {
        case start, middle, end
    }

    mutating func text(
        _ content: String, x: Double, y: Double, size: Double = 13, anchor: Anchor = .start, weight: String? = nil,
        fill: String = "#222222", rotate: Double? = nil, halo: Bool = false
    ) {
        var attributes = "x=\"\(n(x))\" y=\"\(n(y))\" font-size=\"\(n(size))\" text-anchor=\"\(anchor.rawValue)\" fill=\"\(fill)\""
        if halo { attributes += " stroke=\"#ffffff\" stroke-width=\"4\" stroke-linejoin=\"round\" paint-order=\"stroke\"" }
        if let weight { attributes += " font-weight=\"\(weight)\"" }
        if let rotate { attributes += " transform=\"rotate(\(n(rotate)) \(n(x)) \(n(y)))\"" }
        elements.append("<text \(attributes)>\(Self.escape(content))</text>")
    }

    /// Text on an opaque white box, so lines behind it do not cut through the glyphs.
    mutating func boxedText(
        _ content: String, x: Double, y: Double, size: Double = 12, anchor: Anchor = .start, fill: String = "#222222",
        weight: String? = nil
    ) {
        let width = Self.textWidth(content, size: size) + 4
        let left: Double
        switch anchor {
        case .start: left = x - 2
        case .middle: left = x - width / 2
        case .end: left = x - width + 2
        }
        rect(x: left, y: y - size * 0.95, width: width, height: size * 1.25, fill: "#ffffff")
        text(content, x: x, y: y, size: size, anchor: anchor, weight: weight, fill: fill)
    }

    func render() -> String {
        var out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        out += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(n(width))\" height=\"\(n(height))\" "
        out += "viewBox=\"0 0 \(n(width)) \(n(height))\" font-family=\"\(Self.fontFamily)\">\n"
        out += "<rect x=\"0\" y=\"0\" width=\"\(n(width))\" height=\"\(n(height))\" fill=\"#ffffff\"/>\n"
        for element in elements {
            out += element + "\n"
        }
        out += "</svg>\n"
        return out
    }

    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(character)
            }
        }
        return out
    }

    private func n(_ value: Double) -> String {
        guard value.isFinite else { return "0" }
        let rounded = (value * 10).rounded() / 10
        if rounded == rounded.rounded() { return String(Int(rounded)) }
        return String(format: "%.1f", rounded)
    }
}

/// Axis ticks at 1, 2, 2.5 or 5 times a power of ten.
struct NiceScale {
    let maximum: Double
    let step: Double

    init(maximum rawMaximum: Double, targetTicks: Int = 5) {
        let value = rawMaximum.isFinite && rawMaximum > 0 ? rawMaximum : 1
        let rough = value / Double(max(1, targetTicks))
        let magnitude = pow(10, floor(log10(rough)))
        let residual = rough / magnitude
        let multiplier: Double
        if residual <= 1 {
            multiplier = 1
        } else if residual <= 2 {
            multiplier = 2
        } else if residual <= 2.5 {
            multiplier = 2.5
        } else if residual <= 5 {
            multiplier = 5
        } else {
            multiplier = 10
        }
        step = multiplier * magnitude
        maximum = (value / step).rounded(.up) * step
    }

    var ticks: [Double] {
        let count = Int((maximum / step).rounded())
        return (0...count).map { Double($0) * step }
    }

    /// A tick label with no more decimals than the step needs.
    func label(_ value: Double) -> String {
        let decimals = step >= 1 ? 0 : (step * 10 >= 1 && (step * 10).rounded() == step * 10 ? 1 : 2)
        return String(format: "%.\(decimals)f", value)
    }
}
