import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Paths named in flow files: a file, a folder, or a shell glob such as `data/*.svs` or
/// `data/*.{svs,tif,tiff}` (braces as the shell expands them).
public enum PathPattern {
    /// The slide files SSMamba opens natively: the default pattern of a slides folder.
    public static let slideFiles = "*.{svs,SVS,tif,TIF,tiff,TIFF,ndpi,NDPI,vms,VMS,vmu,VMU,mrxs,MRXS,scn,SCN,bif,BIF,svslide}"

    /// Whether `text` contains glob characters.
    public static func isPattern(_ text: String) -> Bool { text.contains { "*?[{".contains($0) } }

    /// The existing paths `text` names, sorted: itself if it exists, or the glob's matches.
    public static func matches(_ text: String) -> [String] {
        guard isPattern(text) else { return FileManager.default.fileExists(atPath: text) ? [text] : [] }
        var result = glob_t()
        defer { globfree(&result) }
        guard glob(text, GLOB_BRACE, nil, &result) == 0 else { return [] }
        return (0..<Int(result.gl_pathc)).compactMap { i in result.gl_pathv[i].map { String(cString: $0) } }.sorted()
    }
}
