import Testing

@testable import CkptPlan

/// Leaf of the test state dicts: a tensor or some other Python value.
enum TestLeaf: Hashable, Sendable {
    case tensor(String)
    case value(String)
    case none

    var isTensor: Bool {
        if case .tensor = self { return true }
        return false
    }
}

typealias Tree = StateTree<TestLeaf>

/// A printable canonical form of a tree, to compare trees (StateTree is not Equatable).
func render(_ tree: Tree) -> String {
    switch tree {
    case .dict(let items): return "{" + items.map { "\($0.key):\(render($0.value))" }.joined(separator: ",") + "}"
    case .list(let elements): return "[" + elements.map(render).joined(separator: ",") + "]"
    case .leaf(let leaf):
        switch leaf {
        case .tensor(let name): return "T(\(name))"
        case .value(let value): return "V(\(value))"
        case .none: return "None"
        }
    }
}

/// The state dict of fixture d_1rank_nested, in its original order.
func fixtureDStateDict() -> Tree {
    func t(_ name: String) -> Tree { .leaf(.tensor(name)) }
    func v(_ value: String) -> Tree { .leaf(.value(value)) }
    func optimState(_ index: String) -> Tree {
        .dict([("exp_avg", t("s\(index).exp_avg")), ("exp_avg_sq", t("s\(index).exp_avg_sq")), ("step", t("s\(index).step"))])
    }
    return .dict([
        ("model", .dict([("w", t("w")), ("b", t("b"))])),
        (
            "optim",
            .dict([
                ("state", .dict([("0", optimState("0")), ("1", optimState("1"))])),
                (
                    "param_groups",
                    .list([
                        .dict([
                            ("lr", v("0.1")), ("betas", v("(0.9, 0.999)")), ("eps", v("1e-08")),
                            ("weight_decay", v("0.0")), ("params", .list([v("0"), v("1")])),
                        ])
                    ])
                ),
            ])
        ),
        (
            "lists",
            .dict([
                ("tensors", .list([t("l0"), t("l1")])),
                ("mixed", .list([t("m0"), v("7"), v("'x'")])),
                ("plain", .list([v("1"), v("2"), v("3")])),
            ])
        ),
        ("epoch", v("2")),
        ("scalar0d", t("scalar0d")),
    ])
}

@Suite struct FlattenTests {
    @Test func fixtureDPathsMatchManifest() throws {
        let manifest = try FixtureManifest.load()
        let fixture = try #require(manifest.fixtures["d_1rank_nested"])
        let flat = try fixtureDStateDict().flatten(isTensor: \.isTensor)

        var expected: [String: [PathElement]] = [:]
        for tensor in fixture.tensors { expected[tensor.fqn] = tensor.path }
        for object in fixture.objects { expected[object.fqn] = object.path }
        #expect(flat.count == expected.count)
        for entry in flat {
            #expect(expected[entry.fqn] == entry.path, "fqn \(entry.fqn)")
            #expect(PathElement.fqn(of: entry.path) == entry.fqn)
        }
        // Tensor-ness of the flattened values matches the manifest's split.
        let tensorFQNs = Set(fixture.tensors.map(\.fqn))
        for entry in flat {
            let isTensor: Bool
            if case .leaf(let leaf) = entry.value { isTensor = leaf.isTensor } else { isTensor = false }
            #expect(isTensor == tensorFQNs.contains(entry.fqn), "fqn \(entry.fqn)")
        }
        // Traversal order = state-dict order.
        #expect(
            flat.map(\.fqn) == [
                "model.w", "model.b",
                "optim.state.0.exp_avg", "optim.state.0.exp_avg_sq", "optim.state.0.step",
                "optim.state.1.exp_avg", "optim.state.1.exp_avg_sq", "optim.state.1.step",
                "optim.param_groups.0.lr", "optim.param_groups.0.betas", "optim.param_groups.0.eps",
                "optim.param_groups.0.weight_decay", "optim.param_groups.0.params",
                "lists.tensors.0", "lists.tensors.1", "lists.mixed.0", "lists.mixed.1", "lists.mixed.2",
                "lists.plain", "epoch", "scalar0d",
            ])
        // Terminal lists stay whole.
        let plain = try #require(flat.first { $0.fqn == "lists.plain" })
        #expect(render(plain.value) == "[V(1),V(2),V(3)]")
    }

    @Test func fixtureDRoundTripsThroughUnflatten() throws {
        let tree = fixtureDStateDict()
        let flat = try tree.flatten(isTensor: \.isTensor)
        let rebuilt = try Tree.unflatten(flat.map { ($0.path, $0.value) }, padding: .none)
        #expect(render(rebuilt) == render(tree))
    }

    @Test func listRules() throws {
        func t(_ name: String) -> Tree { .leaf(.tensor(name)) }
        func v(_ value: String) -> Tree { .leaf(.value(value)) }
        let tree: Tree = .dict([
            ("nested_plain", .list([.list([v("1")]), v("2")])),  // terminal: one leaf
            ("nested_tensor", .list([.list([t("a")]), v("3")])),  // inner list has a tensor: descend both
            ("with_empty_dict", .list([.dict([]), v("4")])),  // a dict makes it non-terminal; {} vanishes
            ("empty_list", .list([])),  // terminal
            ("empty_dict", .dict([])),  // nothing
            ("3", v("int key")),
        ])
        let flat = try tree.flatten(isTensor: \.isTensor)
        #expect(
            flat.map(\.fqn) == [
                "nested_plain", "nested_tensor.0.0", "nested_tensor.1", "with_empty_dict.1", "empty_list", "3",
            ])
        #expect(flat[1].path == [.key("nested_tensor"), .index(0), .index(0)])
        #expect(flat[3].path == [.key("with_empty_dict"), .index(1)])
    }

    @Test func duplicateFQNIsRejected() {
        let tree: Tree = .dict([
            ("a.b", .leaf(.value("x"))),
            ("a", .dict([("b", .leaf(.tensor("y")))])),
        ])
        #expect(throws: StateDictError.duplicateFQN("a.b", firstPath: [.key("a.b")], secondPath: [.key("a"), .key("b")])) {
            try tree.flatten(isTensor: \.isTensor)
        }
        let message = StateDictError.duplicateFQN("a.b", firstPath: [.key("a.b")], secondPath: [.key("a"), .key("b")])
            .description
        #expect(message.contains("'a.b'") && message.contains("('a', 'b')"))
    }

    @Test func rootMustBeADictionary() {
        #expect(throws: StateDictError.rootIsNotADictionary) {
            try Tree.list([]).flatten(isTensor: \.isTensor)
        }
    }

    @Test func unflattenPadsListsAndCreatesContainers() throws {
        let rebuilt = try Tree.unflatten(
            [
                ([.key("a"), .index(2)], .leaf(.value("x"))),
                ([.key("a"), .index(0), .key("k")], .leaf(.value("y"))),
                ([.key("b"), .key("0"), .key("c")], .leaf(.tensor("t"))),
            ], padding: .none)
        #expect(render(rebuilt) == "{a:[{k:V(y)},None,V(x)],b:{0:{c:T(t)}}}")
    }

    @Test func unflattenRejectsContradictions() {
        #expect(throws: StateDictError.conflictingPaths([.key("a")], [.key("a")])) {
            try Tree.unflatten([([.key("a")], .leaf(.value("1"))), ([.key("a")], .leaf(.value("2")))], padding: .none)
        }
        #expect(throws: StateDictError.conflictingPaths([.key("a")], [.key("a"), .key("b")])) {
            try Tree.unflatten(
                [([.key("a")], .leaf(.value("1"))), ([.key("a"), .key("b")], .leaf(.value("2")))], padding: .none)
        }
        #expect(throws: StateDictError.conflictingPaths([.key("a"), .index(0)], [.key("a"), .key("b")])) {
            try Tree.unflatten(
                [([.key("a"), .index(0)], .leaf(.value("1"))), ([.key("a"), .key("b")], .leaf(.value("2")))],
                padding: .none)
        }
        #expect(throws: StateDictError.negativeListIndex([.key("a"), .index(-1)])) {
            try Tree.unflatten([([.key("a"), .index(-1)], .leaf(.value("1")))], padding: .none)
        }
        #expect(throws: StateDictError.listIndexTooLarge([.key("a"), .index(1 << 40)], limit: 65_537)) {
            try Tree.unflatten([([.key("a"), .index(1 << 40)], .leaf(.value("1")))], padding: .none)
        }
        let deep: [PathElement] = [.key("a")] + Array(repeating: .key("b"), count: 1000)
        #expect(throws: StateDictError.pathTooDeep(depth: 1001, limit: 1000)) {
            try Tree.unflatten([(deep, .leaf(.value("1")))], padding: .none)
        }
        #expect(throws: StateDictError.emptyPath) {
            try Tree.unflatten([([], .leaf(.value("1")))], padding: .none)
        }
        #expect(throws: StateDictError.rootIsNotADictionary) {
            try Tree.unflatten([([.index(0)], .leaf(.value("1")))], padding: .none)
        }
    }
}
