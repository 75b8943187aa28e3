import Foundation

/// Small SVG pictures of results (line charts, confusion matrices) that a browser or a report
/// viewer shows as they are: plain text, no fonts embedded, no scripts.
public enum SVGPlot {
    /// One named line of (x, y) points.
    public struct Series: Sendable {
        public let name: String
        public let points: [(x: Double, y: Double)]
        public init(_ name: String, _ points: [(x: Double, y: Double)]) { (self.name, self.points) = (name, points) }
    }

    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]

    /// A line chart of `series` on shared axes (ranges from the data, or `xRange`/`yRange`), with
    /// ticks, axis labels and a legend; `diagonal` draws y = x (ROC charts).
    public static func lines(title: String, xLabel: String, yLabel: String, series: [Series],
                             xRange: ClosedRange<Double>? = nil, yRange: ClosedRange<Double>? = nil, diagonal: Bool = false) -> String {
        let (width, height, left, right, top, bottom) = (640.0, 400.0, 70.0, 170.0, 40.0, 50.0)
        let all = series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite }
        func range(_ values: [Double], _ given: ClosedRange<Double>?) -> ClosedRange<Double> {
            if let given { return given }
            guard let low = values.min(), let high = values.max() else { return 0...1 }
            return low == high ? (low - 1)...(high + 1) : low...high
        }
        let xs = range(all.map(\.x), xRange), ys = range(all.map(\.y), yRange)
        let plotWidth = width - left - right, plotHeight = height - top - bottom
        func px(_ x: Double) -> Double { left + (x - xs.lowerBound) / (xs.upperBound - xs.lowerBound) * plotWidth }
        func py(_ y: Double) -> Double { top + plotHeight - (y - ys.lowerBound) / (ys.upperBound - ys.lowerBound) * plotHeight }
        var svg = header(width, height, title)
        svg += rect(left, top, plotWidth, plotHeight, fill: "none", stroke: "#444")
        for i in 0...4 {
            let fraction = Double(i) / 4
            let x = xs.lowerBound + fraction * (xs.upperBound - xs.lowerBound), y = ys.lowerBound + fraction * (ys.upperBound - ys.lowerBound)
            svg += line(px(x), top + plotHeight, px(x), top + plotHeight + 5, stroke: "#444")
            svg += text(px(x), top + plotHeight + 18, label(x), anchor: "middle")
            svg += line(left - 5, py(y), left, py(y), stroke: "#444")
            svg += text(left - 8, py(y) + 4, label(y), anchor: "end")
        }
        svg += text(left + plotWidth / 2, height - 10, xLabel, anchor: "middle")
        svg += "<text x=\"16\" y=\"\(f(top + plotHeight / 2))\" transform=\"rotate(-90 16 \(f(top + plotHeight / 2)))\" text-anchor=\"middle\">\(escape(yLabel))</text>\n"
        if diagonal {
            svg += "<line x1=\"\(f(px(xs.lowerBound)))\" y1=\"\(f(py(ys.lowerBound)))\" x2=\"\(f(px(xs.upperBound)))\" y2=\"\(f(py(ys.upperBound)))\" stroke=\"#aaa\" stroke-dasharray=\"4 4\"/>\n"
        }
        for (i, s) in series.enumerated() {
            let colour = palette[i % palette.count]
            let points = s.points.filter { $0.x.isFinite && $0.y.isFinite }.map { "\(f(px($0.x))),\(f(py($0.y)))" }.joined(separator: " ")
            svg += "<polyline class=\"series\" data-name=\"\(escape(s.name))\" fill=\"none\" stroke=\"\(colour)\" stroke-width=\"1.5\" points=\"\(points)\"/>\n"
            let y = top + 12 + Double(i) * 18
            svg += line(width - right + 12, y - 4, width - right + 32, y - 4, stroke: colour, strokeWidth: 3)
            svg += text(width - right + 38, y, s.name, anchor: "start")
        }
        return svg + "</svg>\n"
    }

    /// A confusion matrix: rows are the true classes, columns the predicted ones; each cell shaded
    /// by its share of its row and labelled with its count.
    public static func confusion(title: String, classes: [String], counts: [[Int]]) -> String {
        let cell = 56.0, left = 120.0, top = 70.0
        let width = left + cell * Double(classes.count) + 20, height = top + cell * Double(classes.count) + 50
        var svg = header(width, height, title)
        for (j, name) in classes.enumerated() {
            svg += text(left + cell * (Double(j) + 0.5), top - 8, name, anchor: "middle")
            svg += text(left - 8, top + cell * (Double(j) + 0.5) + 4, name, anchor: "end")
        }
        for (i, row) in counts.enumerated() {
            let total = max(1, row.reduce(0, +))
            for (j, count) in row.enumerated() {
                let share = Double(count) / Double(total)
                let shade = Int((1 - share) * 255)
                svg += rect(left + cell * Double(j), top + cell * Double(i), cell, cell, fill: "rgb(\(shade),\(shade),255)", stroke: "#fff")
                svg += text(left + cell * (Double(j) + 0.5), top + cell * (Double(i) + 0.5) + 4, String(count), anchor: "middle",
                            fill: share > 0.5 ? "#fff" : "#000")
            }
        }
        svg += text(left + cell * Double(classes.count) / 2, height - 16, "predicted", anchor: "middle")
        svg += text(12, top - 30, "true ↓", anchor: "start")
        return svg + "</svg>\n"
    }

    // MARK: pieces

    static func header(_ width: Double, _ height: Double, _ title: String) -> String {
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(f(width))\" height=\"\(f(height))\" viewBox=\"0 0 \(f(width)) \(f(height))\" font-family=\"sans-serif\" font-size=\"12\">\n"
            + "<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\n"
            + "<text x=\"\(f(width / 2))\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">\(escape(title))</text>\n"
    }

    static func rect(_ x: Double, _ y: Double, _ w: Double, _ h: Double, fill: String, stroke: String) -> String {
        "<rect x=\"\(f(x))\" y=\"\(f(y))\" width=\"\(f(w))\" height=\"\(f(h))\" fill=\"\(fill)\" stroke=\"\(stroke)\"/>\n"
    }

    static func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, stroke: String, strokeWidth: Double = 1) -> String {
        "<line x1=\"\(f(x1))\" y1=\"\(f(y1))\" x2=\"\(f(x2))\" y2=\"\(f(y2))\" stroke=\"\(stroke)\" stroke-width=\"\(f(strokeWidth))\"/>\n"
    }

    static func text(_ x: Double, _ y: Double, _ content: String, anchor: String, fill: String = "#000") -> String {
        "<text x=\"\(f(x))\" y=\"\(f(y))\" text-anchor=\"\(anchor)\" fill=\"\(fill)\">\(escape(content))</text>\n"
    }

    /// A coordinate with two decimals.
    static func f(_ value: Double) -> String { String(format: "%.2f", value) }

    /// A tick label: few digits, no trailing zeros.
    static func label(_ value: Double) -> String {
        let text = abs(value) >= 1000 || (abs(value) < 0.01 && value != 0) ? String(format: "%.2g", value) : String(format: "%.3g", value)
        return text
    }

    /// Text safe inside SVG elements and attributes.
    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
