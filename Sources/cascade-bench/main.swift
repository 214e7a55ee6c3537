import CascadeBench
import CascadeNet
#if canImport(Glibc)
import Glibc
#endif

let usage = """
usage: cascade-bench <command> [options]

commands:
  tls-recv  --bind IP --port P --ca F --cert F --key F [--reply-digest]
            take one mutual-TLS connection and read it to the end, hashing every 1 MiB chunk
  tls-send  --host IP --port P --ca F --cert F --key F --bytes N [--bind IP] [--expect-digest]
            send N bytes over mutual TLS in 1 MiB writes

  rpc-server --bind IP --port P --ca F --cert F --key F
            serve the benchmark methods (Echo, Download) until killed
  rpc-client --host IP --port P --ca F --cert F --key F --mode latency|rate|stream
             [--calls N] [--size S] [--in-flight K] [--bytes N]
            unary latency (p50/p99), unary calls/s with K in flight, or a streamed download

  rpc-inproc [--calls N] [--size S]
            unary calls over an in-memory pipe in one process: the RPC layer's own CPU per call

  tls-echo-server / tls-echo-client --calls N --size S
            raw TLS ping-pong on Cascade's event loop (the floor under RPC latency)

  fleet-sim  [--agents 1000] [--subnets 40] [--release-mib 8] [--coordinator-binary PATH]
             [--max-unavailable K] [--parallel-clusters C] [--engine-interval 1s] [--timeout 600s]
            a cascade-coordinator child and N agent runtimes in this process; one signed rollout
  fleet-idle [--sessions 10000] [--subnets 50] [--coordinator-binary PATH] [--burst-interval 500ms]
            N idle agent sessions against a coordinator child: RSS per session, heartbeat rate,
            reconnect time after the coordinator is killed and restarted

Each prints one line: result key=value ... (bytes= seconds= cpu= mbps= for the transfers, the
contract of Benchmarks/c; the fleet commands print their figures the same way).
"""

let arguments = CommandLine.arguments
guard arguments.count >= 2 else {
    emitLine(usage)
    exit(2)
}
MemoryTuning.forBulkTransfers()
do {
    switch arguments[1] {
    case "tls-recv": try await TLSBulk.receive(arguments.dropFirst(2))
    case "tls-send": try await TLSBulk.send(arguments.dropFirst(2))
    case "rpc-server": try await RPCBench.server(arguments.dropFirst(2))
    case "tls-echo-server": try await TLSEcho.server(arguments.dropFirst(2))
    case "tls-echo-client": try await TLSEcho.client(arguments.dropFirst(2))
    case "rpc-client": try await RPCBench.client(arguments.dropFirst(2))
    case "rpc-inproc": try await RPCBench.inProcess(arguments.dropFirst(2))
    case "fleet-sim": try await FleetSim.run(arguments.dropFirst(2))
    case "fleet-idle": try await FleetIdle.run(arguments.dropFirst(2))
    case "-h", "--help", "help": emitLine(usage)
    default:
        emitLine("cascade-bench: unknown command \"\(arguments[1])\"\n\n\(usage)", to: 2)
        exit(2)
    }
} catch {
    emitLine("cascade-bench \(arguments[1]): \(error)", to: 2)
    exit(1)
}

