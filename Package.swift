// swift-tools-version:6.1
//
// ckpt: distributed checkpoints of deep-learning training state, PyTorch DCP compatible.
//
// Module map (each has one job):
//   CCkptURing  C shim: the only code that calls liburing and libnuma.
//   CCkptHash   C shim: CRC-32 (libdeflate, zlib) and libxxhash XXH3 (pure functions, no I/O).
//   CkptIO      the I/O engine: io_uring and POSIX backends, aligned buffer pool, syscall funnel,
//               raw-device probe.
//   CkptFormat  pure codecs: pickle, zip, torch.save records, DCP .metadata, safetensors. No I/O.
//   CkptPlan    pure planners: state-dict flattening, save de-duplication, resharding reads. No I/O.
//   Ckpt        the checkpoint engine a trainer embeds: save, load, async save, coordination.
//   CkptBench   the benchmark harness behind `ckpt-bench`.
//   ckpt, ckpt-bench   thin executables.
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "ckpt",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Ckpt", targets: ["Ckpt"]),
        .library(name: "CkptIO", targets: ["CkptIO"]),
        .library(name: "CkptFormat", targets: ["CkptFormat"]),
        .library(name: "CkptPlan", targets: ["CkptPlan"]),
        .executable(name: "ckpt", targets: ["ckpt"]),
        .executable(name: "ckpt-bench", targets: ["ckpt-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
    ],
    targets: [
        .target(
            name: "CCkptURing",
            linkerSettings: [.linkedLibrary("uring"), .linkedLibrary("numa")]
        ),
        .target(
            name: "CCkptHash",
            linkerSettings: [.linkedLibrary("xxhash"), .linkedLibrary("deflate"), .linkedLibrary("z")]
        ),
        .target(
            name: "CkptIO",
            dependencies: [
                "CCkptURing",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "CkptFormat",
            dependencies: ["CCkptHash"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "CkptPlan",
            dependencies: ["CkptFormat"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Ckpt",
            dependencies: ["CkptIO", "CkptFormat", "CkptPlan", "CCkptHash"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "CkptBench",
            dependencies: ["Ckpt", "CkptIO", "CkptFormat", "CkptPlan"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "ckpt",
            dependencies: [
                "Ckpt",
                "CkptIO",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "ckpt-bench",
            dependencies: [
                "CkptBench",
                "CkptIO",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        // Crash-consistency harness: saves a deterministic state in a child process that tests kill.
        .executableTarget(
            name: "ckpt-crash-child",
            dependencies: ["Ckpt", "CkptIO", "CkptFormat", "CkptTestSupport"],
            swiftSettings: swiftSettings
        ),
        // Helpers shared by the test targets (PRNG, SHA-256, fixtures, temp dirs); not a product.
        .target(
            name: "CkptTestSupport",
            dependencies: ["Ckpt", "CkptIO", "CkptFormat", "CkptPlan"],
            path: "Sources/CkptTestSupport",
            swiftSettings: swiftSettings
        ),
        // The Swift side of scripts/interop (round trips with real PyTorch); not a user tool.
        .executableTarget(
            name: "ckpt-interop",
            dependencies: ["Ckpt", "CkptFormat", "CkptIO", "CkptPlan"],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "CkptIOTests", dependencies: ["CkptIO", "CkptTestSupport"], swiftSettings: swiftSettings),
        .testTarget(
            name: "CkptFormatTests",
            dependencies: ["CkptFormat", "CkptTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "CkptPlanTests", dependencies: ["CkptPlan", "CkptTestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "CkptTests", dependencies: ["Ckpt", "CkptTestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "CkptBenchTests", dependencies: ["CkptBench", "CkptTestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "CkptToolsTests", dependencies: ["Ckpt", "CkptTestSupport", "ckpt"], swiftSettings: swiftSettings),
        .testTarget(
            name: "CkptReliabilityTests",
            dependencies: ["Ckpt", "CkptIO", "CkptFormat", "CkptTestSupport"],
            swiftSettings: swiftSettings
        ),
    ]
)
