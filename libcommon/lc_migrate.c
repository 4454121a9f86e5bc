#include "lc_migrate.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lc_alloc.h"
#include "lc_log.h"

#define VERSION_MAX 9999
/* pg_advisory_lock key shared by every migrator: the bytes of "voxi-mig" (0x766f78692d6d6967). */
#define LOCK_KEY "8534172212019423591"

typedef struct {
    int version;
    char *name; /* file name, e.g. "0001_orgs.sql" */
} mig_file_t;

typedef struct {
    mig_file_t *files;
    size_t n, cap;
} mig_list_t;

static int
trimmed_len(const char *msg)
{
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        n--;
    return (int) n;
}

/* ---- the directory ---- */

static bool
ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

/* NNNN_*.sql -> version; false for any other name. */
static bool
parse_name(const char *name, int *version)
{
    if (strlen(name) < 9 || name[4] != '_' || !ends_with(name, ".sql"))
        return false;
    int v = 0;
    for (int i = 0; i < 4; i++) {
        if (name[i] < '0' || name[i] > '9')
            return false;
        v = v * 10 + (name[i] - '0');
    }
    *version = v;
    return true;
}

static char *
join_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + 1 + strlen(name) + 1;
    char *path = lc_malloc(n);
    snprintf(path, n, "%s/%s", dir, name);
    return path;
}

static void
list_free(mig_list_t *list)
{
    for (size_t i = 0; i < list->n; i++)
        free(list->files[i].name);
    free(list->files);
}

static void
list_push(mig_list_t *list, int version, const char *name)
{
    if (list->n == list->cap) {
        list->cap = list->cap ? list->cap * 2 : 16;
        list->files = lc_realloc(list->files, list->cap * sizeof(mig_file_t));
    }
    list->files[list->n].version = version;
    list->files[list->n].name = lc_strdup(name);
    list->n++;
}

static int
compare_files(const void *a, const void *b)
{
    const mig_file_t *fa = a, *fb = b;
    if (fa->version != fb->version)
        return fa->version < fb->version ? -1 : 1;
    return strcmp(fa->name, fb->name);
}

/* Adds `name` when it is a migration file, warns about look-alikes. */
static void
consider_entry(mig_list_t *list, const char *dir, const char *name)
{
    int version;
    if (!parse_name(name, &version)) {
        if (ends_with(name, ".sql"))
            LC_WARN("migrate", "ignoring %s/%s: not named NNNN_description.sql", dir, name);
        return;
    }
    char *path = join_path(dir, name);
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        LC_WARN("migrate", "ignoring %s: not a regular file", path);
    else
        list_push(list, version, name);
    free(path);
}

static lc_status_t
check_duplicates(const mig_list_t *list)
{
    lc_status_t s = LC_OK;
    for (size_t i = 1; i < list->n; i++) {
        if (list->files[i].version == list->files[i - 1].version) {
            LC_ERROR("migrate", "duplicate migration number %04d: %s and %s",
                     list->files[i].version, list->files[i - 1].name, list->files[i].name);
            s = LC_ERR_INVALID;
        }
    }
    return s;
}

/* Fills `list` with the migrations of `dir`, sorted by version. */
static lc_status_t
list_migrations(const char *dir, mig_list_t *list)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        int err = errno;
        LC_ERROR("migrate", "cannot read migrations directory %s: %s", dir, strerror(err));
        return err == ENOENT ? LC_ERR_NOT_FOUND : LC_ERR_IO;
    }
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        consider_entry(list, dir, e->d_name);
    closedir(d);
    if (list->n > 0)
        qsort(list->files, list->n, sizeof(mig_file_t), compare_files);
    return check_duplicates(list);
}

/* Reads a whole migration file, NUL-terminated, refusing more than the bound. */
static lc_status_t
read_migration(const char *path, char **out)
{
    lc_status_t s = LC_OK;
    char *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        LC_ERROR("migrate", "cannot open %s: %s", path, strerror(errno));
        return LC_ERR_IO;
    }
    buf = lc_malloc(LC_MIGRATE_FILE_MAX_BYTES + 2);
    size_t len = 0;
    while (len <= LC_MIGRATE_FILE_MAX_BYTES) { /* one byte past the bound tells "too large" */
        ssize_t got = read(fd, buf + len, LC_MIGRATE_FILE_MAX_BYTES + 1 - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            LC_ERROR("migrate", "cannot read %s: %s", path, strerror(errno));
            s = LC_ERR_IO;
            goto done;
        }
        if (got == 0)
            break;
        len += (size_t) got;
    }
    if (len > LC_MIGRATE_FILE_MAX_BYTES) {
        LC_ERROR("migrate", "%s is larger than %d bytes", path, LC_MIGRATE_FILE_MAX_BYTES);
        s = LC_ERR_TOO_LARGE;
        goto done;
    }
    if (memchr(buf, '\0', len) != NULL) { /* libpq takes C strings: the rest would be lost */
        LC_ERROR("migrate", "%s contains a NUL byte", path);
        s = LC_ERR_INVALID;
        goto done;
    }
    buf[len] = '\0';
    *out = buf;
    buf = NULL;
done:
    free(buf);
    close(fd);
    return s;
}

/* ---- the database ---- */

static void
on_notice(void *arg, const PGresult *res)
{
    (void) arg;
    const char *severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    const char *msg = PQresultErrorMessage(res);
    if (severity && strcmp(severity, "WARNING") == 0)
        LC_WARN("migrate", "server: %.*s", trimmed_len(msg), msg);
    else
        LC_DEBUG("migrate", "server: %.*s", trimmed_len(msg), msg);
}

/* Checks a result, logs a failure with `what` and clears it. */
static lc_status_t
check_result(PGconn *conn, PGresult *res, const char *what)
{
    ExecStatusType st = PQresultStatus(res);
    lc_status_t s = LC_OK;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
        const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(conn);
        LC_ERROR("migrate", "%s failed: %.*s", what, trimmed_len(msg), msg);
        s = PQstatus(conn) == CONNECTION_BAD ? LC_ERR_UNAVAILABLE : LC_ERR_DB;
    }
    PQclear(res);
    return s;
}

static lc_status_t
exec(PGconn *conn, const char *sql, const char *what)
{
    return check_result(conn, PQexec(conn, sql), what);
}

static lc_status_t
connect_db(const char *conninfo, PGconn **out)
{
    PGconn *conn = PQconnectdb(conninfo);
    if (conn == NULL)
        abort(); /* only on out of memory */
    if (PQstatus(conn) != CONNECTION_OK) {
        const char *msg = PQerrorMessage(conn);
        LC_ERROR("migrate", "cannot connect to the database: %.*s", trimmed_len(msg), msg);
        PQfinish(conn);
        return LC_ERR_UNAVAILABLE;
    }
    PQsetNoticeReceiver(conn, on_notice, NULL);
    *out = conn;
    return LC_OK;
}

/* applied[v] = true for every version schema_migrations records. */
static lc_status_t
load_applied(PGconn *conn, bool *applied)
{
    PGresult *res = PQexec(conn, "SELECT version FROM schema_migrations");
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return check_result(conn, res, "reading schema_migrations");
    for (int row = 0; row < PQntuples(res); row++) {
        long v = strtol(PQgetvalue(res, row, 0), NULL, 10);
        if (v >= 0 && v <= VERSION_MAX)
            applied[v] = true;
    }
    PQclear(res);
    return LC_OK;
}

static lc_status_t
record(PGconn *conn, const mig_file_t *file)
{
    char version[16];
    snprintf(version, sizeof(version), "%d", file->version);
    const char *params[2] = {version, file->name};
    PGresult *res =
        PQexecParams(conn, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2, NULL,
                     params, NULL, NULL, 0);
    return check_result(conn, res, "recording the migration");
}

/* COMMIT of a transaction that failed reports success with tag ROLLBACK: check the tag. */
static lc_status_t
commit(PGconn *conn, const char *name)
{
    PGresult *res = PQexec(conn, "COMMIT");
    if (PQresultStatus(res) == PGRES_COMMAND_OK && strcmp(PQcmdStatus(res), "COMMIT") != 0) {
        LC_ERROR("migrate", "%s: the transaction was rolled back at COMMIT", name);
        PQclear(res);
        return LC_ERR_DB;
    }
    return check_result(conn, res, "COMMIT");
}

/* One file in one transaction with its schema_migrations row. */
static lc_status_t
apply_one(PGconn *conn, const char *dir, const mig_file_t *file)
{
    lc_status_t s = LC_OK;
    char *path = join_path(dir, file->name);
    char *sql = NULL;
    bool in_tx = false;
    LC_CHECK(s, read_migration(path, &sql));
    LC_CHECK(s, exec(conn, "BEGIN", "BEGIN"));
    in_tx = true;
    LC_CHECK(s, exec(conn, sql, file->name));
    LC_CHECK(s, record(conn, file));
    in_tx = false; /* COMMIT ends the transaction either way */
    LC_CHECK(s, commit(conn, file->name));
    LC_INFO("migrate", "applied %s", file->name);
done:
    if (in_tx)
        PQclear(PQexec(conn, "ROLLBACK"));
    if (s != LC_OK)
        LC_ERROR("migrate", "migration %s not applied (%s)", path, lc_status_name(s));
    free(sql);
    free(path);
    return s;
}

static lc_status_t
apply_pending(PGconn *conn, const char *dir, const mig_list_t *list, int *applied_out)
{
    lc_status_t s = LC_OK;
    bool *applied = lc_calloc(VERSION_MAX + 1, sizeof(bool));
    LC_CHECK(s, exec(conn, "SELECT pg_advisory_lock(" LOCK_KEY ")", "taking the migration lock"));
    LC_CHECK(s, exec(conn,
                     "CREATE TABLE IF NOT EXISTS schema_migrations ("
                     "version int PRIMARY KEY, name text NOT NULL, "
                     "applied_at timestamptz NOT NULL DEFAULT now())",
                     "creating schema_migrations"));
    LC_CHECK(s, load_applied(conn, applied));
    for (size_t i = 0; i < list->n; i++) {
        if (applied[list->files[i].version])
            continue;
        LC_CHECK(s, apply_one(conn, dir, &list->files[i]));
        (*applied_out)++;
    }
done:
    free(applied);
    return s; /* the lock goes with the session */
}

lc_status_t
lc_migrate_run(const char *conninfo, const char *dir, int *applied_out)
{
    lc_status_t s = LC_OK;
    mig_list_t list = {0};
    PGconn *conn = NULL;
    int applied = 0;
    LC_CHECK(s, list_migrations(dir, &list));
    LC_CHECK(s, connect_db(conninfo, &conn));
    s = apply_pending(conn, dir, &list, &applied);
done:
    PQfinish(conn);
    list_free(&list);
    if (applied_out)
        *applied_out = applied;
    return s;
}

/* ---- the command ---- */

/* Matches `--name VALUE` or `--name=VALUE` at argv[*i]: 1 with *value set, 0 for another
 * argument, -1 when the value is missing. */
static int
match_option(int argc, char **argv, int *i, const char *name, const char **value)
{
    const char *arg = argv[*i];
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0)
        return 0;
    if (arg[n] == '=') {
        *value = arg + n + 1;
        return 1;
    }
    if (arg[n] != '\0')
        return 0;
    if (*i + 1 >= argc)
        return -1;
    *value = argv[++*i];
    return 1;
}

static const char usage[] = "usage: migrate [--database-url URL] [--dir DIR]\n"
                            "  URL defaults to $VOXI_DATABASE_URL; DIR to $VOXI_MIGRATIONS_DIR,\n"
                            "  else \"migrations\".\n";

int
lc_migrate_main(int argc, char **argv)
{
    const char *url = getenv("VOXI_DATABASE_URL");
    const char *dir = getenv("VOXI_MIGRATIONS_DIR");
    if (dir == NULL || *dir == '\0')
        dir = "migrations";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        int m = match_option(argc, argv, &i, "--database-url", &url);
        if (m == 0)
            m = match_option(argc, argv, &i, "--dir", &dir);
        if (m != 1) {
            fprintf(stderr, "migrate: %s %s\n%s", m < 0 ? "missing value for" : "unknown argument",
                    argv[i], usage);
            return 1;
        }
    }
    if (url == NULL || *url == '\0') {
        fprintf(stderr, "migrate: no database: pass --database-url or set VOXI_DATABASE_URL\n");
        return 1;
    }
    int applied = 0;
    lc_status_t s = lc_migrate_run(url, dir, &applied);
    if (s != LC_OK) {
        fprintf(stderr, "migrations: failed (%s) after %d applied; see the log\n",
                lc_status_name(s), applied);
        return 1;
    }
    printf("migrations: %d applied\n", applied);
    return 0;
}
