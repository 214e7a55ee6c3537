// One prefixed C function per macro (or variadic call) that Swift cannot import,
// plus a tiny epoll wrapper so Swift never handles the packed `struct epoll_event`.
#ifndef CASCADE_SHIMS_H
#define CASCADE_SHIMS_H

#include <stdint.h>
#include <openssl/ssl.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <sqlite3.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

// OpenSSL: SSL_CTX_* control macros.
int cascade_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version);
int cascade_SSL_CTX_set_max_proto_version(SSL_CTX *ctx, int version);
long cascade_SSL_CTX_set_mode(SSL_CTX *ctx, long mode);
long cascade_SSL_CTX_set_session_cache_mode(SSL_CTX *ctx, long mode);
/// SSL_CTX_set_tlsext_ticket_keys (a macro): the 80 bytes that protect session tickets.
int cascade_SSL_CTX_set_ticket_keys(SSL_CTX *ctx, unsigned char *keys, long length);
int cascade_SSL_set_tlsext_host_name(SSL *ssl, const char *name);
void cascade_SSL_CTX_set_read_ahead(SSL_CTX *ctx, int yes);
/// SSL_CTX_set1_groups_list (a macro): the key-exchange groups offered and accepted.
int cascade_SSL_CTX_set1_groups_list(SSL_CTX *ctx, const char *list);

/// Makes OpenSSL fail on an encrypted private key instead of prompting on the terminal.
void cascade_SSL_CTX_refuse_passwords(SSL_CTX *ctx);
/// A pem_password_cb that supplies no password.
int cascade_no_password(char *buf, int size, int rwflag, void *userdata);

/// Registers the client's new-session callback (stores sessions for resumption).
void cascade_SSL_CTX_sess_set_new_cb(SSL_CTX *ctx, int (*callback)(SSL *, SSL_SESSION *));
void *cascade_SSL_get_app_data(const SSL *ssl);
int cascade_SSL_set_app_data(SSL *ssl, void *data);

// OpenSSL: SSL_OP_* are built with a function-like macro, so Swift sees none of them.
extern const uint64_t CASCADE_SSL_OP_NO_RENEGOTIATION;
extern const uint64_t CASCADE_SSL_OP_NO_COMPRESSION;
extern const uint64_t CASCADE_SSL_OP_NO_TICKET;

// OpenSSL: variadic key generation.
EVP_PKEY *cascade_generate_ec_p256(void);
EVP_PKEY *cascade_generate_ed25519(void);

// OpenSSL: memory BIO, OPENSSL_free and the GENERAL_NAME stack are macros.
long cascade_BIO_get_mem_data(BIO *bio, char **data);
void cascade_OPENSSL_free(void *pointer);
int cascade_general_names_count(const GENERAL_NAMES *names);
/// If entry `index` is a URI name, points `data`/`length` at it and returns 1; else 0.
int cascade_general_names_uri(const GENERAL_NAMES *names, int index, const unsigned char **data, int *length);
/// If entry `index` is an IP address, points `data`/`length` at its 4 or 16 bytes and returns 1; else 0.
int cascade_general_names_ip(const GENERAL_NAMES *names, int index, const unsigned char **data, int *length);
void cascade_general_names_free(GENERAL_NAMES *names);

// OpenSSL: what an error message needs from a certificate and the error queue.
/// The name in RFC 2253 form ("CN=alice,O=Cascade"), control characters escaped; its length.
int cascade_X509_NAME_rfc2253(const X509_NAME *name, char *buffer, int size);
/// An ASN1_TIME as Unix seconds; 1 on success.
int cascade_ASN1_TIME_unix(const ASN1_TIME *time, int64_t *seconds);
/// 1 if the certificate has an extended key usage (and sets whether it allows TLS server and
/// client use); 0 if it has none (any use).
int cascade_X509_extended_key_usage(X509 *certificate, int *server, int *client);
/// The SSL* whose handshake a verify callback's store context belongs to.
SSL *cascade_X509_STORE_CTX_get_ssl(X509_STORE_CTX *store);
/// The TLS alert (0-255) a queued OpenSSL error says the peer sent, or -1.
int cascade_SSL_alert_received(unsigned long code);

// SQLite: SQLITE_TRANSIENT is a cast of -1 to a function pointer.
sqlite3_destructor_type cascade_sqlite_transient(void);

// epoll without the packed struct: `token` is the 64-bit user data.
int cascade_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t token);
/// Waits like epoll_wait; fills up to `capacity` tokens and event masks. Returns the count or -1 (errno set).
int cascade_epoll_wait(int epfd, uint64_t *tokens, uint32_t *events, int capacity, int timeout_ms);

/// accept4 with SOCK_NONBLOCK | SOCK_CLOEXEC (accept4 needs _GNU_SOURCE, which a module header cannot set).
int cascade_accept(int fd);

/// glibc: keep freed bulk buffers instead of returning them to the kernel (see MemoryTuning).
void cascade_tune_malloc_for_bulk(void);

#endif
