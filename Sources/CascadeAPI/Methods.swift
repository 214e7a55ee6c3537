public import CascadeNet
public import CascadeRPC

/// `cascade.Coordinator`: served by the coordinator, called by agents (services.md §3.1–3.2).
public enum CoordinatorService {
    public static let register = RPCMethod<RegisterRequest, Assignment>(
        "cascade.Coordinator/Register", allowedRoles: [.agent])
    public static let session = RPCMethod<AgentReport, Instruction>(
        "cascade.Coordinator/Session", allowedRoles: [.agent])
    public static let getRelease = RPCMethod<GetReleaseRequest, SignedManifest>(
        "cascade.Coordinator/GetRelease", allowedRoles: [.agent])
    public static let fetchChunks = RPCMethod<FetchChunksRequest, Chunk>(
        "cascade.Coordinator/FetchChunks", allowedRoles: [.agent])
    public static let reportFault = RPCMethod<FaultReport, FetchHint>(
        "cascade.Coordinator/ReportFault", allowedRoles: [.agent])
}

/// `cascade.Leader`: served by an agent in the leader role, called by its members (services.md §3.3).
public enum LeaderService {
    public static let join = RPCMethod<AgentReport, Instruction>(
        "cascade.Leader/Join", allowedRoles: [.agent])
    public static let fetchChunks = RPCMethod<FetchChunksRequest, Chunk>(
        "cascade.Leader/FetchChunks", allowedRoles: [.agent])
    public static let upgradeLeader = RPCMethod<UpgradeLeaderRequest, UpgradeLeaderResponse>(
        "cascade.Leader/UpgradeLeader", allowedRoles: [.agent])
}

/// `cascade.Operator`: served by the coordinator, called by `cascadectl` (services.md §3.6–3.8).
public enum OperatorService {
    // Releases
    public static let pushRelease = RPCMethod<PushReleaseRequest, PushReleaseResponse>(
        "cascade.Operator/PushRelease", allowedRoles: [.operator])
    public static let releaseStatus = RPCMethod<ReleaseQuery, ReleaseStatusResponse>(
        "cascade.Operator/ReleaseStatus", allowedRoles: [.operator])
    public static let listReleases = RPCMethod<ListReleasesRequest, ListReleasesResponse>(
        "cascade.Operator/ListReleases", allowedRoles: [.operator])
    public static let showRelease = RPCMethod<ReleaseQuery, ShowReleaseResponse>(
        "cascade.Operator/ShowRelease", allowedRoles: [.operator])
    public static let verifyRelease = RPCMethod<ReleaseQuery, ReleaseStatusResponse>(
        "cascade.Operator/VerifyRelease", allowedRoles: [.operator])
    public static let deleteRelease = RPCMethod<ReleaseQuery, ReleaseStatusResponse>(
        "cascade.Operator/DeleteRelease", allowedRoles: [.operator])
    // Rollouts
    public static let startRollout = RPCMethod<StartRolloutRequest, RolloutStatus>(
        "cascade.Operator/StartRollout", allowedRoles: [.operator])
    public static let pauseRollout = RPCMethod<RolloutControlRequest, RolloutStatus>(
        "cascade.Operator/PauseRollout", allowedRoles: [.operator])
    public static let resumeRollout = RPCMethod<RolloutControlRequest, RolloutStatus>(
        "cascade.Operator/ResumeRollout", allowedRoles: [.operator])
    public static let abortRollout = RPCMethod<RolloutControlRequest, RolloutStatus>(
        "cascade.Operator/AbortRollout", allowedRoles: [.operator])
    public static let getRollout = RPCMethod<RolloutQuery, RolloutStatus>(
        "cascade.Operator/GetRollout", allowedRoles: [.operator])
    public static let watchRollout = RPCMethod<RolloutQuery, RolloutStatus>(
        "cascade.Operator/WatchRollout", allowedRoles: [.operator])
    public static let listRollouts = RPCMethod<ListRolloutsRequest, ListRolloutsResponse>(
        "cascade.Operator/ListRollouts", allowedRoles: [.operator])
    // Fleet
    public static let listAgents = RPCMethod<ListAgentsRequest, ListAgentsResponse>(
        "cascade.Operator/ListAgents", allowedRoles: [.operator])
    public static let listClusters = RPCMethod<ListClustersRequest, ListClustersResponse>(
        "cascade.Operator/ListClusters", allowedRoles: [.operator])
    public static let moveLeader = RPCMethod<MoveLeaderRequest, ClusterInfo>(
        "cascade.Operator/MoveLeader", allowedRoles: [.operator])
    public static let listEvents = RPCMethod<ListEventsRequest, ListEventsResponse>(
        "cascade.Operator/ListEvents", allowedRoles: [.operator])
}

/// A method's shape (rpc.md §3.2).
public enum CallShape: String, Sendable, Hashable {
    case unary
    case serverStreaming = "server-streaming"
    case clientStreaming = "client-streaming"
    case bidirectional
}

/// Everything services.md §3 says about a method, in one row: used by tests to check the
/// spec's tables against the code, and by tools that list methods.
public struct MethodDescription: Sendable, Hashable {
    public let name: String
    public let shape: CallShape
    public let allowedRoles: Set<PeerIdentity.Role>
    /// Safe to repeat after a failure whose outcome is unknown (rpc.md §14).
    public let idempotent: Bool
    public let requestType: String
    public let responseType: String

    public init<Request, Response>(_ method: RPCMethod<Request, Response>, _ shape: CallShape, idempotent: Bool) {
        self.name = method.name
        self.shape = shape
        self.allowedRoles = method.allowedRoles
        self.idempotent = idempotent
        self.requestType = String(describing: Request.self)
        self.responseType = String(describing: Response.self)
    }
}

public enum CascadeServices {
    /// Every method of every Cascade service, in services.md order.
    public static let methods: [MethodDescription] = [
        MethodDescription(CoordinatorService.register, .unary, idempotent: true),
        MethodDescription(CoordinatorService.session, .bidirectional, idempotent: true),
        MethodDescription(CoordinatorService.getRelease, .unary, idempotent: true),
        MethodDescription(CoordinatorService.fetchChunks, .serverStreaming, idempotent: true),
        MethodDescription(CoordinatorService.reportFault, .unary, idempotent: true),
        MethodDescription(LeaderService.join, .bidirectional, idempotent: true),
        MethodDescription(LeaderService.fetchChunks, .serverStreaming, idempotent: true),
        MethodDescription(LeaderService.upgradeLeader, .unary, idempotent: true),
        MethodDescription(OperatorService.pushRelease, .clientStreaming, idempotent: true),
        MethodDescription(OperatorService.releaseStatus, .unary, idempotent: true),
        MethodDescription(OperatorService.listReleases, .unary, idempotent: true),
        MethodDescription(OperatorService.showRelease, .unary, idempotent: true),
        MethodDescription(OperatorService.verifyRelease, .unary, idempotent: true),
        MethodDescription(OperatorService.deleteRelease, .unary, idempotent: true),
        MethodDescription(OperatorService.startRollout, .unary, idempotent: false),
        MethodDescription(OperatorService.pauseRollout, .unary, idempotent: true),
        MethodDescription(OperatorService.resumeRollout, .unary, idempotent: true),
        MethodDescription(OperatorService.abortRollout, .unary, idempotent: true),
        MethodDescription(OperatorService.getRollout, .unary, idempotent: true),
        MethodDescription(OperatorService.watchRollout, .serverStreaming, idempotent: true),
        MethodDescription(OperatorService.listRollouts, .unary, idempotent: true),
        MethodDescription(OperatorService.listAgents, .unary, idempotent: true),
        MethodDescription(OperatorService.listClusters, .unary, idempotent: true),
        MethodDescription(OperatorService.moveLeader, .unary, idempotent: true),
        MethodDescription(OperatorService.listEvents, .unary, idempotent: true),
    ]
}
