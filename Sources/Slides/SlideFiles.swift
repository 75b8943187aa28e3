import Foundation

/// The files a slide's pixels come from, so that a change to any of them is seen (cache keys).
///
/// Most formats keep a slide in one file. A Hamamatsu VMS/VMU index names its JPEG stripes, map,
/// optimisation and macro files (`ImageFile(x,y)=…`, `MapFile=…`, relative to the index), and a
/// MIRAX `.mrxs` keeps its data in the folder of the same name beside it.
public enum SlideFiles {
    public static func of(path: String, vendor: String) -> [String] {
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent()
        var parts: [String] = []
        switch (vendor, url.pathExtension.lowercased()) {
        case ("hamamatsu", "vms"), ("hamamatsu", "vmu"):
            let text = (try? String(contentsOf: url, encoding: .utf8)) ?? (try? String(contentsOf: url, encoding: .isoLatin1)) ?? ""
            for line in text.split(whereSeparator: \.isNewline) {
                let pair = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard pair.count == 2, !pair[1].isEmpty,
                      pair[0].hasPrefix("ImageFile") || ["MapFile", "OptimisationFile", "MacroImage"].contains(pair[0]) else { continue }
                parts.append(URL(fileURLWithPath: pair[1], relativeTo: directory).standardizedFileURL.path)  // relative to the index, or absolute
            }
        case ("mirax", _):
            let folder = url.deletingPathExtension()
            let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
            parts = names.map { folder.appendingPathComponent($0).path }
        default:
            break
        }
        // Only files that exist: a missing one fails the slide's reads, which say so.
        let existing = Set(parts).filter { name in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: name, isDirectory: &isDirectory) && !isDirectory.boolValue
        }
        return [path] + existing.sorted()
    }
}
