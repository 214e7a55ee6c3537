#!/usr/bin/env python3
"""tls_echo.py: the C tls_echo's protocol in Python (the ssl module over the system
OpenSSL), a second reference row for Cascade's RPC benchmark.

Mutual TLS 1.3, TCP_NODELAY, blocking sockets. The client sends a 4-byte big-endian
message size S once, then does 1,000 warm-up and N timed round trips (write S bytes,
read the echo, check it) and prints "result mode=latency calls=N size=S p50_us=X
p99_us=Y"; the server prints "listening PORT", takes one connection and echoes until
EOF. Either side interoperates with Benchmarks/c/tls_echo.
"""
import argparse
import socket
import ssl
import struct
import sys
import time

WARMUP = 1000
MAX_SIZE = 16 << 20


def context(side, args):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if side == "server" else ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(args.cert, args.key)
    ctx.load_verify_locations(args.ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def read_exactly(conn, count):
    parts, got = [], 0
    while got < count:
        part = conn.recv(count - got)
        if not part:
            return None
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def serve(args):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((args.bind, args.port))
    listener.listen(1)
    print("listening", listener.getsockname()[1], flush=True)
    raw, _ = listener.accept()
    listener.close()
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    with context("server", args).wrap_socket(raw, server_side=True) as conn:
        header = read_exactly(conn, 4)
        if header is None:
            sys.exit("error: no message size header from the client")
        size = struct.unpack(">I", header)[0]
        if not 1 <= size <= MAX_SIZE:
            sys.exit(f"error: message size {size} out of range")
        while True:
            message = read_exactly(conn, size)
            if message is None:
                return
            conn.sendall(message)


def client(args):
    if not 1 <= args.size <= MAX_SIZE:
        sys.exit(f"error: --size needs an integer from 1 to {MAX_SIZE}")
    raw = socket.create_connection((args.host, args.port))
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    with context("client", args).wrap_socket(raw, server_hostname=args.host) as conn:
        conn.sendall(struct.pack(">I", args.size))
        message = bytes(i % 251 for i in range(args.size))
        samples = []
        for i in range(WARMUP + args.calls):
            start = time.perf_counter_ns()
            conn.sendall(message)
            echo = read_exactly(conn, args.size)
            elapsed = time.perf_counter_ns() - start
            if echo is None:
                sys.exit(f"error: round trip {i + 1} failed")
            if echo != message:
                sys.exit("error: echo differs from the message sent")
            if i >= WARMUP:
                samples.append(elapsed)
    samples.sort()
    p50 = samples[len(samples) // 2] / 1000
    p99 = samples[min(len(samples) - 1, len(samples) * 99 // 100)] / 1000
    print(f"result mode=latency calls={args.calls} size={args.size} p50_us={p50:.1f} p99_us={p99:.1f}", flush=True)


def main():
    parser = argparse.ArgumentParser(description="TLS 1.3 echo (Python reference for Cascade's RPC benchmark)")
    parser.add_argument("side", choices=["server", "client"])
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--size", type=int, default=100)
    args = parser.parse_args()
    try:
        if args.side == "server":
            serve(args)
        else:
            client(args)
    except (OSError, ssl.SSLError) as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
