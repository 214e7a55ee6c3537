/// What an archive has created so far under the release directory: directories, files and
/// links, keyed by their path below it. Links are resolved against this tree, following the
/// archive's own earlier links, so a chain like `d/l1 -> ..` then `l2 -> d/l1/..` is seen to
/// leave the release even though each target stays inside when read on its own.
struct BundleTree {
    enum Node: Equatable {
        case directory
        case file
        case symlink(String)
    }

    enum Resolution: Equatable {
        case inside
        case outside
        /// More than `maxLinkHops` links, or more than `maxSteps` components, on the way.
        case tooDeep
    }

    /// The kernel gives up after 40 links (ELOOP); we do too.
    static let maxLinkHops = 40
    /// A bound on the work per resolution, so hostile link names cannot make it quadratic.
    static let maxSteps = 4096

    private(set) var nodes: [String: Node] = [:]

    mutating func add(_ components: some Collection<Substring>, _ node: Node) {
        nodes[components.joined(separator: "/")] = node
    }

    func node(_ components: some Collection<Substring>) -> Node? {
        nodes[components.joined(separator: "/")]
    }

    /// Where `target` (a relative link target) leads from the directory `directory`. Names the
    /// tree does not hold are taken as plain names: the kernel would stop there, not go outside.
    func resolve(_ target: String, from directory: some Collection<Substring>) -> Resolution {
        var current = Array(directory)
        // Components still to walk, the next one last.
        var pending = Array(target.split(separator: "/").reversed())
        var hops = 0
        var steps = 0
        while let component = pending.popLast() {
            steps += 1
            guard steps <= Self.maxSteps else { return .tooDeep }
            if component == "." { continue }
            if component == ".." {
                guard !current.isEmpty else { return .outside }
                current.removeLast()
                continue
            }
            current.append(component)
            guard case .symlink(let next) = node(current) else { continue }
            hops += 1
            guard hops <= Self.maxLinkHops else { return .tooDeep }
            if next.hasPrefix("/") { return .outside }
            current.removeLast()
            pending.append(contentsOf: next.split(separator: "/").reversed())
        }
        return .inside
    }

    /// The first link (path, target) that does not resolve inside, checked against the whole tree
    /// (a link may lead through names the archive only made links after it).
    func firstEscapingLink() -> (path: String, target: String, resolution: Resolution)? {
        for (path, node) in nodes.sorted(by: { $0.key < $1.key }) {
            guard case .symlink(let target) = node else { continue }
            let resolution = resolve(target, from: path.split(separator: "/").dropLast())
            if resolution != .inside { return (path, target, resolution) }
        }
        return nil
    }
}
