/// CSV fields as RFC 4180 writes them: a field holding a comma, a quote or a line break is quoted,
/// its quotes doubled (a slide path with a comma stays one field). Every CSV writer uses this.
public enum CSVField {
    public static func quoted(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// A CSV line of `fields`, each quoted as needed, ending in a newline.
    public static func line(_ fields: [String]) -> String { fields.map(quoted).joined(separator: ",") + "\n" }
}
