/* Shared helpers for the TLS bulk benchmark baseline (tls_send, tls_recv). */
#ifndef CASCADE_BENCH_COMMON_H
#define CASCADE_BENCH_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/ssl.h>

#define CHUNK_SIZE ((size_t)1 << 20) /* 1 MiB */

/* Command-line options shared by both programs; unused ones stay NULL/0. */
struct options {
    const char *host; /* tls_send: address to dial; tls_recv: address to bind */
    const char *port;
    const char *ca;
    const char *cert;
    const char *key;
    uint64_t bytes;   /* tls_send only */
};

/* Point in time for the measured interval: wall clock and process CPU. */
struct stamp {
    double wall; /* seconds, CLOCK_MONOTONIC */
    double cpu;  /* user + system seconds, getrusage(RUSAGE_SELF) */
};

/* Parses argv; host_flag is "--bind" or "--host". Exits 2 on bad usage. */
void parse_options(int argc, char **argv, const char *host_flag, int want_bytes,
                   const char *usage, struct options *opt);

/* Prints msg and the OpenSSL error queue to stderr as "error: ...". */
void report_error(const char *msg);

/* TLS 1.3-only context with mutual authentication required, the CA from
 * opt->ca and the certificate chain and key from opt->cert / opt->key.
 * Returns NULL after report_error on failure. */
SSL_CTX *make_ctx(const SSL_METHOD *method, const struct options *opt);

/* Reads the wall clock and the process CPU time. */
void take_stamp(struct stamp *s);

/* Prints "result bytes=N seconds=S cpu=C mbps=M" and flushes stdout. */
void print_result(uint64_t bytes, const struct stamp *start, const struct stamp *end);

#endif
