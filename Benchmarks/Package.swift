// swift-tools-version:6.1
//
// Micro-benchmarks of ckpt's hot pure code (planners, codecs, checksums) with ordo-one/benchmark.
// A nested package, so `swift build` / `swift test` of the main package never compile it.
// Run: cd Benchmarks && swift package --disable-sandbox benchmark
import PackageDescription

let package = Package(
    name: "CkptBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "ckpt", path: "../"),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "CkptBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "CkptPlan", package: "ckpt"),
                .product(name: "CkptFormat", package: "ckpt"),
            ],
            path: "Benchmarks/CkptBenchmarks",
            swiftSettings: [.swiftLanguageMode(.v6)],
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    ]
)
