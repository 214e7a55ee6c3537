/* tls_send: TLS 1.3 bulk sender, the C baseline of Cascade's TLS benchmark.
 * Dials the receiver with mutual authentication, writes N bytes of a fixed
 * pseudo-random pattern in 1 MiB writes, closes and prints one result line. */
#include "common.h"

#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

static const char *const USAGE =
    "tls_send --host ADDR --port PORT --ca CA --cert CERT --key KEY --bytes N";

static int dial(const char *host, const char *port)
{
    struct addrinfo hints, *res = NULL, *ai;
    int fd = -1, rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
        fprintf(stderr, "error: cannot resolve %s port %s: %s\n", host, port, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        perror("error: connect");
    return fd;
}

/* Deterministic xorshift64 pattern: incompressible-looking, same every run. */
static void fill_pattern(unsigned char *buf, size_t len)
{
    uint64_t x = 0x9E3779B97F4A7C15ull;
    size_t i;

    for (i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf[i] = (unsigned char)(x >> 24);
    }
}

int main(int argc, char **argv)
{
    struct options opt;
    struct stamp start, end;
    SSL_CTX *ctx = NULL;
    SSL *ssl = NULL;
    unsigned char *buf = NULL, sink[4096];
    uint64_t left;
    size_t n;
    int fd = -1, status = 1;

    parse_options(argc, argv, "--host", 1, USAGE, &opt);
    signal(SIGPIPE, SIG_IGN);

    if ((ctx = make_ctx(TLS_client_method(), &opt)) == NULL)
        goto done;
    if ((buf = malloc(CHUNK_SIZE)) == NULL) {
        fprintf(stderr, "error: out of memory\n");
        goto done;
    }
    fill_pattern(buf, CHUNK_SIZE);
    if ((fd = dial(opt.host, opt.port)) < 0)
        goto done;
    if ((ssl = SSL_new(ctx)) == NULL || !SSL_set_fd(ssl, fd)) {
        report_error("SSL_new failed");
        goto done;
    }
    /* Check the receiver's certificate names the address we dialled when it
     * is an IP literal (agent certificates carry their IP SAN); otherwise
     * send SNI and check the DNS name. */
    if (!X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), opt.host)) {
        ERR_clear_error();
        if (!SSL_set_tlsext_host_name(ssl, opt.host) || !SSL_set1_host(ssl, opt.host)) {
            report_error("cannot set the expected host name");
            goto done;
        }
    }
    if (SSL_connect(ssl) != 1) {
        report_error("TLS handshake failed");
        goto done;
    }

    take_stamp(&start);
    for (left = opt.bytes; left > 0; left -= n) {
        size_t want = left < CHUNK_SIZE ? (size_t)left : CHUNK_SIZE;
        if (!SSL_write_ex(ssl, buf, want, &n)) {
            report_error("SSL_write_ex failed");
            goto done;
        }
    }
    if (SSL_shutdown(ssl) < 0) {
        report_error("SSL_shutdown failed");
        goto done;
    }
    /* Wait for the receiver to close (its close_notify or TCP EOF), so every
     * byte was consumed and no unread data turns our close into a reset. */
    while (SSL_read_ex(ssl, sink, sizeof(sink), &n))
        ;
    if (SSL_get_error(ssl, 0) != SSL_ERROR_ZERO_RETURN) {
        report_error("receiver did not close cleanly");
        goto done;
    }
    take_stamp(&end);

    print_result(opt.bytes, &start, &end);
    status = 0;
done:
    SSL_free(ssl);
    if (fd >= 0)
        close(fd);
    SSL_CTX_free(ctx);
    free(buf);
    return status;
}
