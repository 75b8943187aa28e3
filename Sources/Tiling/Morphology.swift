/// Binary morphology on 0/1 masks (width × height, rows top to bottom).
enum Morphology {
    /// Maximum over a (2r+1)² square, separably.
    static func dilate(_ mask: [UInt8], _ w: Int, _ h: Int, _ r: Int) -> [UInt8] { filter(mask, w, h, r, max, outside: 0) }
    /// Minimum over a (2r+1)² square; outside the image does not erode (tissue cut by the slide's
    /// edge keeps its edge).
    static func erode(_ mask: [UInt8], _ w: Int, _ h: Int, _ r: Int) -> [UInt8] { filter(mask, w, h, r, min, outside: 1) }

    private static func filter(_ mask: [UInt8], _ w: Int, _ h: Int, _ r: Int, _ pick: (UInt8, UInt8) -> UInt8, outside: UInt8 = 0) -> [UInt8] {
        var rows = mask
        for y in 0..<h {
            for x in 0..<w {
                var v = mask[y * w + x]
                for dx in -r...r { let xx = x + dx; v = pick(v, xx >= 0 && xx < w ? mask[y * w + xx] : outside) }
                rows[y * w + x] = v
            }
        }
        var out = rows
        for y in 0..<h {
            for x in 0..<w {
                var v = rows[y * w + x]
                for dy in -r...r { let yy = y + dy; v = pick(v, yy >= 0 && yy < h ? rows[yy * w + x] : outside) }
                out[y * w + x] = v
            }
        }
        return out
    }

    /// Labels 4-connected regions of `value` and calls `body` with each region's pixel indices
    /// and whether it touches the border.
    static func regions(_ mask: [UInt8], _ w: Int, _ h: Int, of value: UInt8, _ body: ([Int], Bool) -> Void) {
        var seen = [Bool](repeating: false, count: w * h)
        var stack: [Int] = []
        for start in 0..<(w * h) where mask[start] == value && !seen[start] {
            var members: [Int] = []
            var border = false
            stack.append(start); seen[start] = true
            while let i = stack.popLast() {
                members.append(i)
                let x = i % w, y = i / w
                if x == 0 || y == 0 || x == w - 1 || y == h - 1 { border = true }
                for (nx, ny) in [(x - 1, y), (x + 1, y), (x, y - 1), (x, y + 1)] where nx >= 0 && ny >= 0 && nx < w && ny < h {
                    let j = ny * w + nx
                    if mask[j] == value && !seen[j] { seen[j] = true; stack.append(j) }
                }
            }
            body(members, border)
        }
    }

    static func removeSmallRegions(_ mask: [UInt8], _ w: Int, _ h: Int, minimumPixels: Int) -> [UInt8] {
        var out = mask
        regions(mask, w, h, of: 1) { members, _ in
            if members.count < minimumPixels { for i in members { out[i] = 0 } }
        }
        return out
    }

    /// Background regions that do not reach the border are holes: they become tissue.
    static func fillHoles(_ mask: [UInt8], _ w: Int, _ h: Int) -> [UInt8] {
        var out = mask
        regions(mask, w, h, of: 0) { members, border in
            if !border { for i in members { out[i] = 1 } }
        }
        return out
    }
}
