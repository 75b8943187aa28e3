import Foundation

/// A small CSV reader (RFC 4180 quoting, comma separated, first row = header) whose errors name
/// the file and line.
public struct CSVTable: Sendable {
    public let path: String
    public let header: [String]
    /// Rows as dictionaries, with their 1-based line numbers.
    public let rows: [(line: Int, values: [String: String])]

    public init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw StageError(.invalidInput, "\(path)", "cannot read the CSV file (check the path and that it is UTF-8 text)")
        }
        var records: [(Int, [String])] = []
        var field = "", record: [String] = [], quoted = false, line = 1, recordLine = 1
        var iterator = text.makeIterator()
        var pending: Character? = nil
        while let c = pending ?? iterator.next() {
            pending = nil
            if quoted {
                if c == "\"" {
                    if let next = iterator.next() {
                        if next == "\"" { field.append("\"") } else { quoted = false; pending = next }
                    } else { quoted = false }
                } else {
                    if c == "\n" { line += 1 }
                    field.append(c)
                }
            } else if c == "\"" && field.isEmpty {
                quoted = true
            } else if c == "," {
                record.append(field); field = ""
            } else if c == "\n" || c == "\r\n" {
                record.append(field); field = ""
                if !(record.count == 1 && record[0].isEmpty) { records.append((recordLine, record)) }
                record = []
                line += 1
                recordLine = line
            } else if c != "\r" {
                field.append(c)
            }
        }
        if quoted { throw StageError(.invalidInput, "\(path):\(recordLine)", "a quoted field is never closed") }
        if !field.isEmpty || !record.isEmpty { record.append(field); records.append((recordLine, record)) }
        guard let first = records.first else { throw StageError(.invalidInput, "\(path)", "the CSV file is empty (it needs a header row)") }
        header = first.1.map { $0.trimmingCharacters(in: .whitespaces) }
        var rows: [(Int, [String: String])] = []
        for (number, values) in records.dropFirst() {
            guard values.count == header.count else {
                throw StageError(.invalidInput, "\(path):\(number)", "\(values.count) fields, but the header has \(header.count) (\(header.joined(separator: ", ")))")
            }
            rows.append((number, Dictionary(uniqueKeysWithValues: zip(header, values.map { $0.trimmingCharacters(in: .whitespaces) }))))
        }
        self.path = path
        self.rows = rows
    }

    /// Fails naming the missing columns.
    public func require(_ columns: [String]) throws {
        let missing = columns.filter { !header.contains($0) }
        if !missing.isEmpty {
            throw StageError(.invalidInput, "\(path)", "missing column(s) \(missing.joined(separator: ", ")); the header is: \(header.joined(separator: ", "))")
        }
    }
}
