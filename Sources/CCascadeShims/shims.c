#define _GNU_SOURCE
#include "CCascadeShims.h"
#include <sys/epoll.h>
#include <malloc.h>
#include <sys/socket.h>
#include <string.h>
#include <time.h>
#include <openssl/err.h>

int cascade_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_min_proto_version(ctx, version);
}

int cascade_SSL_CTX_set_max_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_max_proto_version(ctx, version);
}

long cascade_SSL_CTX_set_mode(SSL_CTX *ctx, long mode) {
    return SSL_CTX_set_mode(ctx, mode);
}

long cascade_SSL_CTX_set_session_cache_mode(SSL_CTX *ctx, long mode) {
    return SSL_CTX_set_session_cache_mode(ctx, mode);
}

int cascade_SSL_set_tlsext_host_name(SSL *ssl, const char *name) {
    return (int)SSL_set_tlsext_host_name(ssl, name);
}

void cascade_SSL_CTX_set_read_ahead(SSL_CTX *ctx, int yes) {
    SSL_CTX_set_read_ahead(ctx, yes);
}

int cascade_SSL_CTX_set1_groups_list(SSL_CTX *ctx, const char *list) {
    return (int)SSL_CTX_set1_groups_list(ctx, list);
}

int cascade_no_password(char *buf, int size, int rwflag, void *userdata) {
    (void)buf; (void)size; (void)rwflag; (void)userdata;
    return 0;
}

void cascade_SSL_CTX_refuse_passwords(SSL_CTX *ctx) {
    SSL_CTX_set_default_passwd_cb(ctx, cascade_no_password);
}

void cascade_SSL_CTX_sess_set_new_cb(SSL_CTX *ctx, int (*callback)(SSL *, SSL_SESSION *)) {
    SSL_CTX_sess_set_new_cb(ctx, callback);
}

void *cascade_SSL_get_app_data(const SSL *ssl) {
    return SSL_get_app_data(ssl);
}

int cascade_SSL_set_app_data(SSL *ssl, void *data) {
    return SSL_set_app_data(ssl, data);
}

const uint64_t CASCADE_SSL_OP_NO_RENEGOTIATION = SSL_OP_NO_RENEGOTIATION;
const uint64_t CASCADE_SSL_OP_NO_COMPRESSION = SSL_OP_NO_COMPRESSION;
const uint64_t CASCADE_SSL_OP_NO_TICKET = SSL_OP_NO_TICKET;

EVP_PKEY *cascade_generate_ec_p256(void) {
    return EVP_EC_gen("P-256");
}

EVP_PKEY *cascade_generate_ed25519(void) {
    return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
}

long cascade_BIO_get_mem_data(BIO *bio, char **data) {
    return BIO_get_mem_data(bio, data);
}

void cascade_OPENSSL_free(void *pointer) {
    OPENSSL_free(pointer);
}

int cascade_general_names_count(const GENERAL_NAMES *names) {
    return sk_GENERAL_NAME_num(names);
}

int cascade_general_names_uri(const GENERAL_NAMES *names, int index, const unsigned char **data, int *length) {
    const GENERAL_NAME *name = sk_GENERAL_NAME_value(names, index);
    if (name == NULL || name->type != GEN_URI) return 0;
    *data = ASN1_STRING_get0_data(name->d.uniformResourceIdentifier);
    *length = ASN1_STRING_length(name->d.uniformResourceIdentifier);
    return 1;
}

int cascade_general_names_ip(const GENERAL_NAMES *names, int index, const unsigned char **data, int *length) {
    const GENERAL_NAME *name = sk_GENERAL_NAME_value(names, index);
    if (name == NULL || name->type != GEN_IPADD) return 0;
    *data = ASN1_STRING_get0_data(name->d.iPAddress);
    *length = ASN1_STRING_length(name->d.iPAddress);
    return 1;
}

void cascade_general_names_free(GENERAL_NAMES *names) {
    GENERAL_NAMES_free(names);
}

sqlite3_destructor_type cascade_sqlite_transient(void) {
    return SQLITE_TRANSIENT;
}

int cascade_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t token) {
    struct epoll_event event;
    event.events = events;
    event.data.u64 = token;
    return epoll_ctl(epfd, op, fd, &event);
}

int cascade_epoll_wait(int epfd, uint64_t *tokens, uint32_t *events, int capacity, int timeout_ms) {
    struct epoll_event ready[256];
    if (capacity > 256) capacity = 256;
    int count = epoll_wait(epfd, ready, capacity, timeout_ms);
    for (int i = 0; i < count; i++) {
        tokens[i] = ready[i].data.u64;
        events[i] = ready[i].events;
    }
    return count;
}

int cascade_accept(int fd) {
    return accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

void cascade_tune_malloc_for_bulk(void) {
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 128 << 20);
}

int cascade_SSL_CTX_set_ticket_keys(SSL_CTX *ctx, unsigned char *keys, long length) {
    return (int)SSL_CTX_set_tlsext_ticket_keys(ctx, keys, length);
}

int cascade_X509_NAME_rfc2253(const X509_NAME *name, char *buffer, int size) {
    if (name == NULL || buffer == NULL || size <= 0) return 0;
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL) return 0;
    int written = X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253);
    int length = 0;
    if (written >= 0) {
        char *data = NULL;
        long available = BIO_get_mem_data(bio, &data);
        length = available < size - 1 ? (int)available : size - 1;
        if (length > 0 && data != NULL) memcpy(buffer, data, (size_t)length);
    }
    buffer[length] = 0;
    BIO_free(bio);
    return length;
}

int cascade_ASN1_TIME_unix(const ASN1_TIME *time, int64_t *seconds) {
    struct tm parts;
    memset(&parts, 0, sizeof parts);
    if (time == NULL || ASN1_TIME_to_tm(time, &parts) != 1) return 0;
    *seconds = (int64_t)timegm(&parts);
    return 1;
}

int cascade_X509_extended_key_usage(X509 *certificate, int *server, int *client) {
    if ((X509_get_extension_flags(certificate) & EXFLAG_XKUSAGE) == 0) return 0;
    uint32_t usage = X509_get_extended_key_usage(certificate);
    *server = (usage & XKU_SSL_SERVER) != 0;
    *client = (usage & XKU_SSL_CLIENT) != 0;
    return 1;
}

SSL *cascade_X509_STORE_CTX_get_ssl(X509_STORE_CTX *store) {
    return (SSL *)X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
}

int cascade_SSL_alert_received(unsigned long code) {
    if (ERR_SYSTEM_ERROR(code) || ERR_GET_LIB(code) != ERR_LIB_SSL) return -1;
    int reason = ERR_GET_REASON(code);
    if (reason < SSL_AD_REASON_OFFSET || reason >= SSL_AD_REASON_OFFSET + 256) return -1;
    return reason - SSL_AD_REASON_OFFSET;
}
