/* tls_echo: TLS 1.3 echo, the C latency baseline of Cascade's RPC benchmark
 * (blocking sockets, TCP_NODELAY, mutual TLS 1.3; usage below). The client
 * sends a 4-byte big-endian message size S once, then does 1,000 warm-up and
 * N timed round trips (write S bytes, read the echo) and prints "result
 * mode=latency calls=N size=S p50_us=X p99_us=Y"; the server echoes until EOF.
 * With --epoll (either side) the socket is non-blocking after the handshake and
 * every read first waits in epoll_wait on a one-shot registration re-armed
 * before each wait: Cascade's event loop's I/O pattern, with nothing else. */
#include "common.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#define WARMUP 1000
#define MAX_SIZE ((uint32_t)16 << 20)

static const char *const USAGE =
    "tls_echo server --bind ADDR --port PORT --ca CA --cert CERT --key KEY [--epoll]\n"
    "       tls_echo client --host ADDR --port PORT --ca CA --cert CERT --key KEY"
    " --calls N --size S [--epoll]";

/* The epoll instance in --epoll mode (else -1) and the socket it watches. */
static int epoll_fd = -1, sock_fd = -1;

/* --epoll: re-arms the one-shot registration for `events` and waits until the
 * socket is ready. Returns 0, or -1 on error (reported). */
static int wait_for(uint32_t events)
{
    struct epoll_event ev = { .events = events | EPOLLONESHOT };
    int n;

    if (epoll_ctl(epoll_fd, EPOLL_CTL_MOD, sock_fd, &ev) != 0) {
        perror("error: epoll_ctl");
        return -1;
    }
    while ((n = epoll_wait(epoll_fd, &ev, 1, -1)) < 0 && errno == EINTR)
        ;
    if (n < 0)
        perror("error: epoll_wait");
    return n < 0 ? -1 : 0;
}

static int wait_readable(void) { return wait_for(EPOLLIN | EPOLLRDHUP); }

/* --epoll: waits for what a non-blocking OpenSSL call asked for (after `ok`
 * was 0). Returns 1 to retry the call, 0 when it is not a would-block. */
static int retry_after_wait(SSL *ssl)
{
    int err = SSL_get_error(ssl, 0);

    if (epoll_fd < 0 || (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE))
        return 0;
    return wait_for(err == SSL_ERROR_WANT_READ ? EPOLLIN | EPOLLRDHUP : EPOLLOUT) == 0;
}

/* --epoll: makes the connected socket non-blocking and registers it, disarmed. */
static int start_epoll(int fd)
{
    struct epoll_event ev = { .events = EPOLLONESHOT };
    int flags = fcntl(fd, F_GETFL);

    sock_fd = fd;
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0 ||
        (epoll_fd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
        epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        perror("error: epoll setup");
        return -1;
    }
    return 0;
}

static unsigned long count_arg(const char *name, const char *s)
{
    char *end = NULL;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v == 0 || v > MAX_SIZE) {
        fprintf(stderr, "error: %s needs an integer from 1 to %u\nusage: %s\n", name,
                (unsigned)MAX_SIZE, USAGE);
        exit(2);
    }
    return v;
}

/* Opens a TCP socket to or on host:port with TCP_NODELAY set. A listening
 * socket prints "listening <port>". Returns the fd or -1. */
static int open_socket(const char *host, const char *port, int listening)
{
    struct addrinfo hints, *res = NULL;
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof(ss);
    char portstr[NI_MAXSERV];
    int fd, one = 1, rc, ok;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | (listening ? AI_PASSIVE | AI_NUMERICHOST : 0);
    if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
        fprintf(stderr, "error: cannot resolve %s port %s: %s\n", host, port, gai_strerror(rc));
        return -1;
    }
    fd = socket(res->ai_family, res->ai_socktype, res->ai_protocol);
    ok = fd >= 0 && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0;
    if (listening)
        ok = ok && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
             bind(fd, res->ai_addr, res->ai_addrlen) == 0 && listen(fd, 1) == 0 &&
             getsockname(fd, (struct sockaddr *)&ss, &sslen) == 0 &&
             getnameinfo((struct sockaddr *)&ss, sslen, NULL, 0, portstr, sizeof(portstr),
                         NI_NUMERICSERV) == 0;
    else
        ok = ok && connect(fd, res->ai_addr, res->ai_addrlen) == 0;
    freeaddrinfo(res);
    if (!ok) {
        perror(listening ? "error: listen" : "error: connect");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (listening) {
        printf("listening %s\n", portstr);
        fflush(stdout);
    }
    return fd;
}

/* Reads exactly len bytes. Returns 1, 0 at a clean EOF before any byte, -1
 * on error (reported). */
static int read_full(SSL *ssl, unsigned char *buf, size_t len)
{
    size_t have = 0, n;
    int err;

    /* --epoll: wait first rather than probe an empty socket (as Cascade does). */
    if (epoll_fd >= 0 && SSL_has_pending(ssl) == 0 && wait_readable() < 0)
        return -1;
    while (have < len) {
        if (SSL_read_ex(ssl, buf + have, len - have, &n)) {
            have += n;
            continue;
        }
        err = SSL_get_error(ssl, 0);
        if (retry_after_wait(ssl))
            continue;
        if (have == 0 && err == SSL_ERROR_ZERO_RETURN)
            return 0;
        report_error(have == 0 ? "SSL_read_ex failed" : "stream ended inside a message");
        return -1;
    }
    return 1;
}

static int write_full(SSL *ssl, const unsigned char *buf, size_t len)
{
    size_t n; /* blocking: writes all or fails; --epoll: retried with the same arguments */

    while (!SSL_write_ex(ssl, buf, len, &n))
        if (!retry_after_wait(ssl))
            return report_error("SSL_write_ex failed"), -1;
    return 0;
}

static double now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static int serve(SSL *ssl)
{
    unsigned char hdr[4], *buf;
    uint32_t size;
    int rc, status = -1;

    if (read_full(ssl, hdr, sizeof(hdr)) != 1) {
        fprintf(stderr, "error: no message size header from the client\n");
        return -1;
    }
    size = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
    if (size == 0 || size > MAX_SIZE || (buf = malloc(size)) == NULL) {
        fprintf(stderr, "error: message size %u out of range or out of memory\n", (unsigned)size);
        return -1;
    }
    while ((rc = read_full(ssl, buf, size)) == 1)
        if (write_full(ssl, buf, size) < 0)
            break;
    if (rc == 0) {
        SSL_shutdown(ssl); /* answer the client's close_notify; best effort */
        status = 0;
    }
    free(buf);
    return status;
}

static int run_client(SSL *ssl, unsigned long calls, uint32_t size)
{
    unsigned char hdr[4] = { size >> 24, size >> 16, size >> 8, size }, *out, *in, sink[256];
    double *lat = malloc(calls * sizeof(double)), t0;
    unsigned long i;
    size_t n;
    int status = -1;

    out = malloc(size);
    in = malloc(size);
    if (lat == NULL || out == NULL || in == NULL) {
        fprintf(stderr, "error: out of memory\n");
        goto done;
    }
    for (i = 0; i < size; i++)
        out[i] = (unsigned char)(i * 131 + 7);
    if (write_full(ssl, hdr, sizeof(hdr)) < 0)
        goto done;
    for (i = 0; i < WARMUP + calls; i++) {
        t0 = now_us();
        if (write_full(ssl, out, size) < 0 || read_full(ssl, in, size) != 1) {
            fprintf(stderr, "error: round trip %lu failed\n", i + 1);
            goto done;
        }
        if (i >= WARMUP)
            lat[i - WARMUP] = now_us() - t0;
        if (memcmp(in, out, size) != 0) {
            fprintf(stderr, "error: echo differs from the message sent\n");
            goto done;
        }
    }
    qsort(lat, calls, sizeof(double), cmp_double);
    if (SSL_shutdown(ssl) < 0) {
        report_error("SSL_shutdown failed");
        goto done;
    }
    /* Wait for the server's close_notify (or EOF) so it has seen the end. */
    while (SSL_read_ex(ssl, sink, sizeof(sink), &n) || retry_after_wait(ssl))
        ;
    if (SSL_get_error(ssl, 0) != SSL_ERROR_ZERO_RETURN) {
        report_error("server did not close cleanly");
        goto done;
    }
    printf("result mode=latency calls=%lu size=%u p50_us=%.1f p99_us=%.1f\n", calls,
           (unsigned)size, lat[calls / 2], lat[calls * 99 / 100]);
    fflush(stdout);
    status = 0;
done:
    free(lat);
    free(out);
    free(in);
    return status;
}

int main(int argc, char **argv)
{
    struct options opt;
    SSL_CTX *ctx = NULL;
    SSL *ssl = NULL;
    char **rest;
    unsigned long calls = 0, size = 0;
    int server, nrest = 1, i, lfd = -1, fd = -1, one = 1, status = 1, use_epoll = 0;

    if (argc < 2 || (strcmp(argv[1], "server") != 0 && strcmp(argv[1], "client") != 0)) {
        fprintf(stderr, "usage: %s\n", USAGE);
        return 2;
    }
    server = strcmp(argv[1], "server") == 0;
    /* Take --calls/--size out; common.c's parser handles the rest. */
    if ((rest = calloc((size_t)argc, sizeof(char *))) == NULL)
        return 1;
    rest[0] = argv[0];
    for (i = 2; i < argc; i++) {
        if (!server && i + 1 < argc && strcmp(argv[i], "--calls") == 0)
            calls = count_arg("--calls", argv[++i]);
        else if (!server && i + 1 < argc && strcmp(argv[i], "--size") == 0)
            size = count_arg("--size", argv[++i]);
        else if (strcmp(argv[i], "--epoll") == 0)
            use_epoll = 1;
        else
            rest[nrest++] = argv[i];
    }
    parse_options(nrest, rest, server ? "--bind" : "--host", 0, USAGE, &opt);
    if (!server && (calls == 0 || size == 0)) {
        fprintf(stderr, "error: the client needs --calls and --size\nusage: %s\n", USAGE);
        free(rest);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    if ((ctx = make_ctx(server ? TLS_server_method() : TLS_client_method(), &opt)) == NULL)
        goto done;
    if (server) {
        SSL_CTX_set_num_tickets(ctx, 0); /* one connection, no resumption */
        if ((lfd = open_socket(opt.host, opt.port, 1)) < 0)
            goto done;
        if ((fd = accept(lfd, NULL, NULL)) < 0 ||
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
            perror("error: accept");
            goto done;
        }
    } else if ((fd = open_socket(opt.host, opt.port, 0)) < 0) {
        goto done;
    }
    if ((ssl = SSL_new(ctx)) == NULL || !SSL_set_fd(ssl, fd)) {
        report_error("SSL_new failed");
        goto done;
    }
    if (!server && !X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), opt.host)) {
        ERR_clear_error(); /* not an IP literal: check the DNS name instead */
        if (!SSL_set_tlsext_host_name(ssl, opt.host) || !SSL_set1_host(ssl, opt.host)) {
            report_error("cannot set the expected host name");
            goto done;
        }
    }
    if ((server ? SSL_accept(ssl) : SSL_connect(ssl)) != 1) {
        report_error("TLS handshake failed");
        goto done;
    }
    if (use_epoll && start_epoll(fd) < 0)
        goto done;
    if ((server ? serve(ssl) : run_client(ssl, calls, (uint32_t)size)) == 0)
        status = 0;
done:
    if (epoll_fd >= 0)
        close(epoll_fd);
    SSL_free(ssl);
    if (fd >= 0)
        close(fd);
    if (lfd >= 0)
        close(lfd);
    SSL_CTX_free(ctx);
    free(rest);
    return status;
}
