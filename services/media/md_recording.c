#include "md_recording.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lc_alloc.h"
#include "lc_log.h"
#include "lc_pb.h"
#include "voxi/v1/media.pb-c.h"

struct md_recording_srv {
    md_worker_t *w;
    lc_nats_sub_t *sub;
    char subject[160];
    lc_metric_t *m_ok, *m_refused;
};

/* Checks the request and opens the file. Returns LC_OK and an open fd, or the error with a
 * message for the caller. */
static lc_status_t
open_recording(md_recording_srv_t *srv, const Voxi__V1__RecordingReadRequest *req, int *fd_out,
               const char **why)
{
    *fd_out = -1;
    const char *dir = srv->w->cfg->recordings_dir;
    if (dir == NULL || dir[0] == '\0') {
        *why = "this worker does not record calls";
        return LC_ERR_NOT_FOUND;
    }
    size_t plen = strlen(req->path);
    if (plen == 0 || plen >= PATH_MAX) {
        *why = "path must be 1 to 4095 characters";
        return LC_ERR_INVALID;
    }
    char dir_real[PATH_MAX], file_real[PATH_MAX];
    if (realpath(dir, dir_real) == NULL) {
        *why = "no recordings directory";
        return LC_ERR_NOT_FOUND;
    }
    if (realpath(req->path, file_real) == NULL) {
        *why = "no such recording";
        return errno == ENOENT || errno == ENOTDIR ? LC_ERR_NOT_FOUND : LC_ERR_INVALID;
    }
    /* directly inside the directory: "<dir>/<name>" with no further slash */
    size_t dlen = strlen(dir_real);
    const char *name = file_real + dlen + 1;
    if (strncmp(file_real, dir_real, dlen) != 0 || file_real[dlen] != '/' || name[0] == '\0' ||
        strchr(name, '/') != NULL) {
        *why = "path is outside the recordings directory";
        return LC_ERR_INVALID;
    }
    if (req->call_id[0]) {
        char expected[128];
        snprintf(expected, sizeof(expected), "%s.wav", req->call_id);
        if (strcmp(name, expected) != 0) {
            *why = "path is not that call's recording";
            return LC_ERR_INVALID;
        }
    }
    int fd = open(file_real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat stbuf;
    if (fd < 0 || fstat(fd, &stbuf) != 0 || !S_ISREG(stbuf.st_mode)) {
        if (fd >= 0)
            close(fd);
        *why = "no such recording";
        return LC_ERR_NOT_FOUND;
    }
    *fd_out = fd;
    return LC_OK;
}

static void
on_read(lc_nats_t *nc, const lc_nats_msg_t *msg, void *arg)
{
    md_recording_srv_t *srv = arg;
    const char *reply_to = lc_nats_msg_reply(msg);
    if (reply_to == NULL || reply_to[0] == '\0')
        return;
    Voxi__V1__Envelope *env = NULL;
    ProtobufCMessage *body = NULL;
    lc_status_t st = lc_pb_unpack(lc_nats_msg_data(msg), lc_nats_msg_len(msg),
                                  &voxi__v1__recording_read_request__descriptor, &env, &body);
    const char *rid = env && env->request_id ? env->request_id : "";
    lc_log_context_set(rid, NULL);
    const char *why = "malformed request";
    uint8_t *chunk = NULL;
    Voxi__V1__RecordingReadReply rep = VOXI__V1__RECORDING_READ_REPLY__INIT;
    int fd = -1;
    if (st == LC_OK) {
        Voxi__V1__RecordingReadRequest *req = (Voxi__V1__RecordingReadRequest *) body;
        uint32_t length = req->length ? req->length : MD_RECORDING_READ_MAX;
        if (length > MD_RECORDING_READ_MAX) {
            st = LC_ERR_INVALID;
            why = "length must be at most 262144";
        } else {
            st = open_recording(srv, req, &fd, &why);
        }
        struct stat stbuf;
        if (st == LC_OK && fstat(fd, &stbuf) != 0) {
            st = LC_ERR_IO;
            why = "cannot read the recording";
        }
        if (st == LC_OK) {
            uint64_t size = (uint64_t) stbuf.st_size;
            size_t want = 0;
            if (req->offset < size)
                want = size - req->offset < length ? (size_t) (size - req->offset) : length;
            chunk = lc_malloc(want + 1);
            ssize_t got = want ? pread(fd, chunk, want, (off_t) req->offset) : 0;
            if (got < 0) {
                st = LC_ERR_IO;
                why = "cannot read the recording";
            } else {
                rep.data.data = chunk;
                rep.data.len = (size_t) got;
                rep.total_size = size;
                rep.eof = req->offset + (uint64_t) got >= size;
            }
        }
    }
    if (fd >= 0)
        close(fd);
    uint8_t *out = NULL;
    size_t len = 0;
    if (st == LC_OK) {
        lc_metric_inc(srv->m_ok);
        lc_pb_meta_t meta = {.request_id = rid};
        lc_pb_pack(&meta, &rep.base, &out, &len);
    } else {
        lc_metric_inc(srv->m_refused);
        LC_LOG_RL(LC_LOG_INFO, "recording", 1, "read refused: %s", why);
        lc_pb_pack_error(rid, st, why, &out, &len);
    }
    lc_nats_respond(nc, reply_to, out, len);
    free(out);
    free(chunk);
    lc_pb_free(env, body);
    lc_log_context_clear();
}

md_recording_srv_t *
md_recording_srv_create(md_worker_t *w)
{
    md_recording_srv_t *srv = LC_NEW(md_recording_srv_t);
    srv->w = w;
    const char *h = "recording chunks read over NATS, by outcome";
    srv->m_ok =
        lc_metrics_counter(w->metrics, "voxi_media_recording_reads_total", h, "outcome=\"ok\"");
    srv->m_refused = lc_metrics_counter(w->metrics, "voxi_media_recording_reads_total", h,
                                        "outcome=\"refused\"");
    snprintf(srv->subject, sizeof(srv->subject), "voxi.media.%s.recording.read", w->instance_id);
    if (lc_nats_subscribe(w->nats, srv->subject, NULL, on_read, srv, &srv->sub) != LC_OK)
        LC_WARN("recording", "cannot subscribe %s", srv->subject);
    return srv;
}

void
md_recording_srv_stop(md_recording_srv_t *srv)
{
    if (srv == NULL || srv->sub == NULL)
        return;
    lc_nats_unsubscribe(srv->w->nats, srv->sub);
    srv->sub = NULL;
}

void
md_recording_srv_destroy(md_recording_srv_t *srv)
{
    free(srv);
}
