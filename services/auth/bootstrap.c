#include "au_bootstrap.h"

#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "au_key.h"
#include "au_scope.h"
#include "au_text.h"
#include "lc_log.h"
#include "lc_time.h"

#define DEFAULT_DATABASE_URL "host=127.0.0.1 port=5432 dbname=voxi user=voxi"
#define ID_MAX 40

static int
usage(void)
{
    fprintf(stderr, "usage: voxi-auth bootstrap [--key-file PATH] [--database-url URL]\n");
    return 2;
}

/* Runs one statement; on failure prints it with the server's message and returns false. */
static bool
exec(PGconn *conn, const char *what, const char *sql, int nparams, const char *const *params,
     PGresult **res_out)
{
    PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        fprintf(stderr, "voxi-auth bootstrap: %s failed: %s", what, PQerrorMessage(conn));
        PQclear(res);
        return false;
    }
    if (res_out)
        *res_out = res;
    else
        PQclear(res);
    return true;
}

/* Writes key + newline to path with mode 0600: a new file next to it, then rename, so the
 * file is never seen half-written or with wider permissions. */
static bool
write_key_file(const char *path, const char *key)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int) getpid()) >= (int) sizeof(tmp)) {
        fprintf(stderr, "voxi-auth bootstrap: key file path too long\n");
        return false;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "voxi-auth bootstrap: cannot create %s: %s\n", tmp, strerror(errno));
        return false;
    }
    size_t len = strlen(key);
    bool ok = fchmod(fd, 0600) == 0 && write(fd, key, len) == (ssize_t) len &&
              write(fd, "\n", 1) == 1 && fsync(fd) == 0;
    int saved = errno;
    if (close(fd) != 0 && ok) {
        ok = false;
        saved = errno;
    }
    if (ok && rename(tmp, path) != 0) {
        ok = false;
        saved = errno;
    }
    if (!ok) {
        fprintf(stderr, "voxi-auth bootstrap: cannot write %s: %s\n", path, strerror(saved));
        unlink(tmp);
    }
    return ok;
}

static const char CREATE_SQL[] =
    "WITH o AS (INSERT INTO orgs (id, name) VALUES ($1, 'default') RETURNING id),"
    " k AS (INSERT INTO api_keys (id, org_id, name, prefix, secret_hash, scopes, platform_admin)"
    " SELECT $2, o.id, 'platform admin', $3, decode($4, 'hex'), string_to_array($5, ' '), true"
    " FROM o RETURNING id)"
    " INSERT INTO auth_audit (org_id, principal_kind, principal_id, action, resource_type,"
    " resource_id, changes)"
    " SELECT o.id, 'system', 'bootstrap', 'org.create', 'org', o.id,"
    " '{\"name\":\"default\"}' FROM o"
    " UNION ALL"
    " SELECT o.id, 'system', 'bootstrap', 'api_key.create', 'api_key', k.id,"
    " jsonb_build_object('name', 'platform admin', 'platform_admin', true) FROM o, k";

/* The transaction; returns 0 created, 3 already bootstrapped, 1 failure. */
static int
bootstrap(PGconn *conn, const char *key_file, char key[AU_KEY_LEN + 1], char *org_id)
{
    PGresult *res = NULL;
    if (!exec(conn, "BEGIN", "BEGIN", 0, NULL, NULL))
        return 1;
    /* SHARE ROW EXCLUSIVE conflicts with itself and with inserts: one bootstrap wins */
    if (!exec(conn, "locking orgs", "LOCK TABLE orgs IN SHARE ROW EXCLUSIVE MODE", 0, NULL, NULL) ||
        !exec(conn, "reading orgs", "SELECT EXISTS (SELECT 1 FROM orgs)", 0, NULL, &res)) {
        exec(conn, "ROLLBACK", "ROLLBACK", 0, NULL, NULL);
        return 1;
    }
    bool exists = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (exists) {
        exec(conn, "ROLLBACK", "ROLLBACK", 0, NULL, NULL);
        return 3;
    }
    char key_id[ID_MAX], prefix[AU_KEY_PREFIX_LEN + 1], hash_hex[2 * AU_KEY_HASH_LEN + 1];
    char scopes[256];
    uint8_t hash[AU_KEY_HASH_LEN];
    lc_id_new("org_", org_id, ID_MAX);
    lc_id_new("key_", key_id, sizeof(key_id));
    au_key_generate(key);
    au_key_hash(key, AU_KEY_LEN, hash);
    au_hex(hash, sizeof(hash), hash_hex);
    au_key_prefix(key, prefix);
    au_scopes_format(AU_SCOPES_ALL, ' ', scopes, sizeof(scopes));
    const char *params[] = {org_id, key_id, prefix, hash_hex, scopes};
    if (!exec(conn, "creating the org and its key", CREATE_SQL, 5, params, NULL)) {
        exec(conn, "ROLLBACK", "ROLLBACK", 0, NULL, NULL);
        return 1;
    }
    /* the file before the commit: a key nobody could read would lock the admin out */
    if (key_file != NULL && !write_key_file(key_file, key)) {
        exec(conn, "ROLLBACK", "ROLLBACK", 0, NULL, NULL);
        return 1;
    }
    if (!exec(conn, "COMMIT", "COMMIT", 0, NULL, NULL)) {
        if (key_file != NULL)
            unlink(key_file);
        return 1;
    }
    return 0;
}

int
au_bootstrap_main(int argc, char **argv)
{
    const char *key_file = NULL;
    const char *url = getenv("VOXI_DATABASE_URL");
    if (url == NULL || url[0] == '\0')
        url = DEFAULT_DATABASE_URL;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char **target = NULL;
        const char *value = NULL;
        if (strncmp(arg, "--key-file", 10) == 0)
            target = &key_file;
        else if (strncmp(arg, "--database-url", 14) == 0)
            target = &url;
        else
            return usage();
        const char *eq = strchr(arg, '=');
        size_t name_len = target == &key_file ? 10 : 14;
        if (arg[name_len] == '=' && eq == arg + name_len)
            value = eq + 1;
        else if (arg[name_len] == '\0' && i + 1 < argc)
            value = argv[++i];
        else
            return usage();
        if (value[0] == '\0')
            return usage();
        *target = value;
    }
    lc_log_level_t level = LC_LOG_INFO;
    const char *level_text = getenv("VOXI_LOG_LEVEL");
    if (level_text)
        lc_log_level_parse(level_text, &level);
    lc_log_init("auth", level, LC_LOG_FMT_LOGFMT);

    PGconn *conn = PQconnectdb(url);
    if (PQstatus(conn) != CONNECTION_OK) {
        /* libpq's message names host and port, never the password */
        fprintf(stderr, "voxi-auth bootstrap: cannot connect to the database: %s",
                PQerrorMessage(conn));
        PQfinish(conn);
        return 1;
    }
    char key[AU_KEY_LEN + 1];
    char org_id[ID_MAX];
    int rc = bootstrap(conn, key_file, key, org_id);
    PQfinish(conn);
    if (rc == 3) {
        printf("already bootstrapped; the admin key was shown when it was created\n");
        return 0;
    }
    if (rc != 0)
        return 1;
    fprintf(stderr,
            "voxi-auth bootstrap: created org %s \"default\" and its platform-admin API key%s%s%s"
            " (shown this once)\n",
            org_id, key_file ? "; written to " : "", key_file ? key_file : "",
            key_file ? " (mode 0600)" : "");
    printf("%s\n", key);
    fflush(stdout);
    OPENSSL_cleanse(key, sizeof(key));
    return 0;
}
