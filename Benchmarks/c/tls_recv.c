/* tls_recv: TLS 1.3 bulk receiver, the C baseline of Cascade's TLS benchmark.
 * Accepts one mutually authenticated connection, reads until EOF into 1 MiB
 * chunks, hashes each chunk with SHA-256 and prints one result line. */
#include "common.h"

#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>

static const char *const USAGE =
    "tls_recv --bind ADDR --port PORT --ca CA --cert CERT --key KEY";

/* Listens on addr:port (port "0" = ephemeral); prints "listening <port>". */
static int listen_on(const char *addr, const char *port)
{
    struct addrinfo hints, *res = NULL;
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof(ss);
    char portstr[NI_MAXSERV];
    int fd, one = 1, rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
    if ((rc = getaddrinfo(addr, port, &hints, &res)) != 0) {
        fprintf(stderr, "error: bad bind address %s port %s: %s\n", addr, port, gai_strerror(rc));
        return -1;
    }
    fd = socket(res->ai_family, res->ai_socktype, res->ai_protocol);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 1) != 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &sslen) != 0 ||
        getnameinfo((struct sockaddr *)&ss, sslen, NULL, 0, portstr, sizeof(portstr),
                    NI_NUMERICSERV) != 0) {
        perror("error: listen");
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    printf("listening %s\n", portstr);
    fflush(stdout);
    return fd;
}

/* Fills buf with up to CHUNK_SIZE bytes. Returns the count (0 at EOF with
 * nothing read), or -1 on error. *eof is set once the stream has ended. */
static long read_chunk(SSL *ssl, unsigned char *buf, int *eof)
{
    size_t have = 0, n;

    while (have < CHUNK_SIZE) {
        if (SSL_read_ex(ssl, buf + have, CHUNK_SIZE - have, &n)) {
            have += n;
            continue;
        }
        if (SSL_get_error(ssl, 0) == SSL_ERROR_ZERO_RETURN) {
            *eof = 1;
            break;
        }
        report_error("SSL_read_ex failed");
        return -1;
    }
    return (long)have;
}

int main(int argc, char **argv)
{
    struct options opt;
    struct stamp start, end;
    SSL_CTX *ctx = NULL;
    SSL *ssl = NULL;
    EVP_MD *sha256 = NULL;
    EVP_MD_CTX *mdctx = NULL;
    unsigned char *buf = NULL, digest[EVP_MAX_MD_SIZE];
    unsigned int dlen;
    uint64_t total = 0;
    int lfd = -1, fd = -1, eof = 0, status = 1;

    parse_options(argc, argv, "--bind", 0, USAGE, &opt);
    signal(SIGPIPE, SIG_IGN);

    if ((ctx = make_ctx(TLS_server_method(), &opt)) == NULL)
        goto done;
    SSL_CTX_set_num_tickets(ctx, 0); /* one connection, no resumption */
    sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    mdctx = EVP_MD_CTX_new();
    buf = malloc(CHUNK_SIZE);
    if (sha256 == NULL || mdctx == NULL || buf == NULL) {
        report_error("out of memory or SHA-256 unavailable");
        goto done;
    }
    if ((lfd = listen_on(opt.host, opt.port)) < 0)
        goto done;
    if ((fd = accept(lfd, NULL, NULL)) < 0) {
        perror("error: accept");
        goto done;
    }
    close(lfd);
    lfd = -1;
    if ((ssl = SSL_new(ctx)) == NULL || !SSL_set_fd(ssl, fd)) {
        report_error("SSL_new failed");
        goto done;
    }
    if (SSL_accept(ssl) != 1) {
        report_error("TLS handshake failed");
        goto done;
    }

    take_stamp(&start);
    while (!eof) {
        long got = read_chunk(ssl, buf, &eof);
        if (got < 0)
            goto done;
        if (got == 0)
            break;
        /* One digest per chunk, as a release chunk check does. */
        if (!EVP_DigestInit_ex2(mdctx, sha256, NULL) ||
            !EVP_DigestUpdate(mdctx, buf, (size_t)got) ||
            !EVP_DigestFinal_ex(mdctx, digest, &dlen)) {
            report_error("SHA-256 failed");
            goto done;
        }
        total += (uint64_t)got;
    }
    take_stamp(&end);

    SSL_shutdown(ssl); /* answer the peer's close_notify; best effort */
    print_result(total, &start, &end);
    status = 0;
done:
    SSL_free(ssl);
    if (fd >= 0)
        close(fd);
    if (lfd >= 0)
        close(lfd);
    SSL_CTX_free(ctx);
    EVP_MD_CTX_free(mdctx);
    EVP_MD_free(sha256);
    free(buf);
    return status;
}
