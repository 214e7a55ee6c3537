/* Shared helpers for the TLS bulk benchmark baseline (tls_send, tls_recv). */
#include "common.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <openssl/err.h>

static void bad_usage(const char *usage, const char *msg)
{
    if (msg != NULL)
        fprintf(stderr, "error: %s\n", msg);
    fprintf(stderr, "usage: %s\n", usage);
    exit(2);
}

void parse_options(int argc, char **argv, const char *host_flag, int want_bytes,
                   const char *usage, struct options *opt)
{
    enum { O_HOST = 1, O_PORT, O_CA, O_CERT, O_KEY, O_BYTES };
    struct option longopts[] = {
        { host_flag + 2, required_argument, NULL, O_HOST },
        { "port", required_argument, NULL, O_PORT },
        { "ca", required_argument, NULL, O_CA },
        { "cert", required_argument, NULL, O_CERT },
        { "key", required_argument, NULL, O_KEY },
        { "bytes", required_argument, NULL, O_BYTES },
        { NULL, 0, NULL, 0 },
    };
    int c;

    if (!want_bytes) /* end the table before --bytes */
        memset(&longopts[5], 0, sizeof(longopts[5]));
    memset(opt, 0, sizeof(*opt));
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case O_HOST: opt->host = optarg; break;
        case O_PORT: opt->port = optarg; break;
        case O_CA: opt->ca = optarg; break;
        case O_CERT: opt->cert = optarg; break;
        case O_KEY: opt->key = optarg; break;
        case O_BYTES: {
            char *end = NULL;
            errno = 0;
            unsigned long long v = strtoull(optarg, &end, 10);
            if (errno != 0 || end == optarg || *end != '\0' || optarg[0] == '-')
                bad_usage(usage, "--bytes needs a non-negative integer");
            opt->bytes = (uint64_t)v;
            break;
        }
        default: bad_usage(usage, "unknown or incomplete option");
        }
    }
    if (optind != argc)
        bad_usage(usage, "unexpected argument");
    if (opt->host == NULL || opt->port == NULL || opt->ca == NULL ||
        opt->cert == NULL || opt->key == NULL)
        bad_usage(usage, "missing a required option");
}

void report_error(const char *msg)
{
    unsigned long e;
    char buf[256];

    fprintf(stderr, "error: %s\n", msg);
    while ((e = ERR_get_error()) != 0) {
        ERR_error_string_n(e, buf, sizeof(buf));
        fprintf(stderr, "error:   %s\n", buf);
    }
}

SSL_CTX *make_ctx(const SSL_METHOD *method, const struct options *opt)
{
    SSL_CTX *ctx = SSL_CTX_new(method);

    if (ctx == NULL) {
        report_error("SSL_CTX_new failed");
        return NULL;
    }
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
        !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION)) {
        report_error("cannot restrict the protocol to TLS 1.3");
        goto fail;
    }
    if (!SSL_CTX_load_verify_locations(ctx, opt->ca, NULL)) {
        report_error("cannot load the CA file");
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, opt->cert) != 1) {
        report_error("cannot load the certificate chain");
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, opt->key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        report_error("cannot load the private key or it does not match");
        goto fail;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    /* A peer that closes TCP without close_notify still ends the stream. */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

void take_stamp(struct stamp *s)
{
    struct timespec ts;
    struct rusage ru;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    getrusage(RUSAGE_SELF, &ru);
    s->wall = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    s->cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
             (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

void print_result(uint64_t bytes, const struct stamp *start, const struct stamp *end)
{
    double seconds = end->wall - start->wall;
    double mbps = seconds > 0 ? (double)bytes / 1e6 / seconds : 0.0;

    printf("result bytes=%llu seconds=%.4f cpu=%.4f mbps=%.1f\n",
           (unsigned long long)bytes, seconds, end->cpu - start->cpu, mbps);
    fflush(stdout);
}
