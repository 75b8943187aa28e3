// swift-tools-version:6.0
// SSMamba: a streaming, cached pipeline for pathology images and the SSMamba model, on CPUs.
import PackageDescription

/// The numeric kernels need AVX2 + FMA + F16C: without them `addingProduct` becomes a libm call per
/// lane and Float16 conversion runs in software. For an older CPU, build with
/// `SSMAMBA_TARGET_CPU=x86-64 swift build` (any CPU name swiftc accepts works).
let targetCPU = Context.environment["SSMAMBA_TARGET_CPU"] ?? "haswell"
let numericFlags: [SwiftSetting] = [.unsafeFlags(["-target-cpu", targetCPU])]

/// One system-library target per C library: the module map links it, pkg-config finds its
/// headers, and the apt provider tells a user which Debian package is missing.
func systemLibrary(_ name: String, pkgConfig: String, apt: String) -> Target {
    .systemLibrary(name: name, pkgConfig: pkgConfig, providers: [.apt([apt])])
}

let package = Package(
    name: "SSMamba",
    products: [
        .executable(name: "ssmamba", targets: ["CommandLineTool"]),
        .library(name: "Tensors", targets: ["Tensors"]),
        .library(name: "SSMamba", targets: ["SSMamba"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
    ],
    targets: [
        systemLibrary("CBLAS", pkgConfig: "openblas", apt: "libopenblas-dev"),
        systemLibrary("CLMDB", pkgConfig: "lmdb", apt: "liblmdb-dev"),
        systemLibrary("CTIFF", pkgConfig: "libtiff-4", apt: "libtiff-dev"),
        systemLibrary("CZstd", pkgConfig: "libzstd", apt: "libzstd-dev"),
        systemLibrary("COpenJPEG", pkgConfig: "libopenjp2", apt: "libopenjp2-7-dev"),
        systemLibrary("CPNG", pkgConfig: "libpng", apt: "libpng-dev"),
        systemLibrary("CZlib", pkgConfig: "zlib", apt: "zlib1g-dev"),
        systemLibrary("CTurboJPEG", pkgConfig: "libturbojpeg", apt: "libturbojpeg0-dev"),
        systemLibrary("COpenSlide", pkgConfig: "openslide", apt: "libopenslide-dev"),  // vendor formats the TIFF reader does not handle
        systemLibrary("CMPI", pkgConfig: "ompi-c", apt: "libopenmpi-dev"),  // Open MPI, for training over several processes
        .systemLibrary(name: "CDNNL"),  // oneDNN (libdnnl-dev, no pkg-config file): GEMMs and bfloat16 products
        .systemLibrary(name: "CMalloc"),  // glibc's <malloc.h> (mallopt), not imported by Glibc
        .systemLibrary(name: "CPrefetch"),  // __builtin_prefetch for the scan kernels
        .systemLibrary(name: "CJPEGWindow"),  // libjpeg window decoding (its errors longjmp, which Swift cannot catch)

        .target(name: "Diagnostics"),  // the one shape of user-facing errors (kind, subject, message)
        .target(name: "Randomness", swiftSettings: numericFlags),  // the seeded generator every random draw of a run comes from
        .target(name: "Tensors", dependencies: ["Diagnostics", "Randomness", "CBLAS", "CDNNL", "CMalloc"], swiftSettings: numericFlags),
        .target(name: "SSMamba", dependencies: ["Diagnostics", "Randomness", "Tensors", "CPrefetch"], swiftSettings: numericFlags),
        .target(name: "TileCache", dependencies: ["Diagnostics", "CLMDB", "CZstd", "Tensors"], swiftSettings: numericFlags),
        .target(name: "Slides", dependencies: ["Diagnostics", "CTIFF", "COpenJPEG", "CPNG", "CTurboJPEG", "CJPEGWindow", "CZlib", "COpenSlide"], swiftSettings: numericFlags),
        .target(name: "Tiling", dependencies: ["Diagnostics", "Plots", "Slides", "Tensors", "TileCache"], swiftSettings: numericFlags),
        .target(name: "Metrics", dependencies: ["Randomness"]),
        .target(name: "Plots"),  // SVG pictures of results (curves, confusion matrices)
        .target(name: "Flow", dependencies: [.product(name: "Yams", package: "Yams")]),
        .target(name: "Distributed", dependencies: ["Diagnostics", "CMPI"]),
        .target(name: "Stages", dependencies: ["Diagnostics", "Plots", "Randomness", "Flow", "Slides", "Tiling", "TileCache", "Tensors", "SSMamba", "Metrics", "Distributed"], swiftSettings: numericFlags),

        // The `ssmamba` command (the product's name); the module has its own name so that no two
        // module folders differ only by case (`SSMamba` is the model).
        .executableTarget(
            name: "CommandLineTool",
            dependencies: [
                "Randomness", "Tensors", "SSMamba", "Slides", "Tiling", "TileCache", "Flow", "Stages", "Distributed", "CBLAS", "CLMDB", "CTIFF", "CZstd", "COpenJPEG",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(name: "Benchmarks", dependencies: ["Randomness", "Tensors", "SSMamba", "Slides", "Tiling", "TileCache", "Stages"], swiftSettings: numericFlags),

        .testTarget(name: "TensorsTests", dependencies: ["Randomness", "Tensors"], exclude: ["Fixtures"], swiftSettings: numericFlags),
        .testTarget(name: "CommandLineToolTests", dependencies: ["Randomness", "CommandLineTool", "Slides", "SSMamba", "Tensors", "TileCache", "Stages", "Tiling"]),
        .testTarget(name: "DistributedTests", dependencies: ["Distributed"]),
        .testTarget(name: "FlowTests", dependencies: ["Flow"]),
        .testTarget(name: "MetricsTests", dependencies: ["Metrics", "Plots", "Randomness"], exclude: ["Fixtures"]),
        .testTarget(name: "StagesTests", dependencies: ["Diagnostics", "Randomness", "Stages", "Flow", "Tiling", "Slides", "TileCache", "SSMamba", "Tensors"], swiftSettings: numericFlags),
        .testTarget(name: "TilingTests", dependencies: ["Tiling", "Slides"], exclude: ["Fixtures"], swiftSettings: numericFlags),
        .testTarget(name: "TileCacheTests", dependencies: ["Randomness", "TileCache", "Tensors"], swiftSettings: numericFlags),
        .testTarget(name: "SlidesTests", dependencies: ["Randomness", "Slides", "Tensors"], exclude: ["Fixtures"], swiftSettings: numericFlags),
        .testTarget(name: "SSMambaTests", dependencies: ["Randomness", "SSMamba", "Tensors"], exclude: ["Fixtures"], swiftSettings: numericFlags),
    ]
)
