/*
 * md_wav: stereo WAV recorder with bounded buffering. See md_wav.h.
 *
 * Layout of the canonical 44-byte header (RIFF/WAVE, one "fmt " chunk of 16 bytes for
 * WAVE_FORMAT_PCM, then the "data" chunk); every field little-endian.
 */
#include "md_wav.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lc_alloc.h"
#include "lc_log.h"

/* Samples go to the file straight from the buffer. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "WAV samples are little-endian");

#define HEADER_BYTES 44
#define CHANNELS 2
#define FRAME_BYTES (CHANNELS * 2)
/* The RIFF size field (file size - 8) is 32 bits. */
#define MAX_DATA_BYTES ((uint64_t) UINT32_MAX - (HEADER_BYTES - 8))

struct md_wav {
    int fd;
    char *path;
    int rate_hz;
    int16_t *buf; /* interleaved L/R frames */
    size_t cap_frames;
    size_t flush_frames;
    size_t filled[CHANNELS]; /* frames of each channel present in buf */
    uint64_t data_bytes;
    md_wav_stats_t stats;
};

static void
put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t) v;
    p[1] = (uint8_t) (v >> 8);
}

static void
put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t) v;
    p[1] = (uint8_t) (v >> 8);
    p[2] = (uint8_t) (v >> 16);
    p[3] = (uint8_t) (v >> 24);
}

static void
make_header(uint8_t h[HEADER_BYTES], int rate_hz, uint32_t data_bytes)
{
    memcpy(h, "RIFF", 4);
    put_le32(h + 4, (uint32_t) (HEADER_BYTES - 8) + data_bytes);
    memcpy(h + 8, "WAVE", 4);
    memcpy(h + 12, "fmt ", 4);
    put_le32(h + 16, 16); /* fmt chunk size */
    put_le16(h + 20, 1);  /* WAVE_FORMAT_PCM */
    put_le16(h + 22, CHANNELS);
    put_le32(h + 24, (uint32_t) rate_hz);
    put_le32(h + 28, (uint32_t) rate_hz * FRAME_BYTES); /* byte rate */
    put_le16(h + 32, FRAME_BYTES);                      /* block align */
    put_le16(h + 34, 16);                               /* bits per sample */
    memcpy(h + 36, "data", 4);
    put_le32(h + 40, data_bytes);
}

static bool
write_all(int fd, const void *data, size_t len, off_t offset, bool positioned)
{
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t n = positioned ? pwrite(fd, p, len, offset) : write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        p += n;
        len -= (size_t) n;
        offset += n;
    }
    return true;
}

lc_status_t
md_wav_create(const char *path, int rate_hz, md_wav_t **out)
{
    if (out == NULL)
        return LC_ERR_INVALID;
    *out = NULL;
    if (path == NULL || path[0] == '\0' || rate_hz < 8000 || rate_hz > 48000)
        return LC_ERR_INVALID;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
        LC_WARN("wav", "cannot create %s: %s", path, strerror(errno));
        return LC_ERR_IO;
    }
    uint8_t h[HEADER_BYTES];
    make_header(h, rate_hz, 0);
    if (!write_all(fd, h, sizeof(h), 0, false)) {
        LC_WARN("wav", "cannot write %s: %s", path, strerror(errno));
        close(fd);
        return LC_ERR_IO;
    }
    md_wav_t *w = LC_NEW(md_wav_t);
    w->fd = fd;
    w->path = lc_strdup(path);
    w->rate_hz = rate_hz;
    w->flush_frames = (size_t) rate_hz * MD_WAV_FLUSH_MS / 1000;
    w->cap_frames = (size_t) rate_hz * (MD_WAV_FLUSH_MS + MD_WAV_MAX_SKEW_MS) / 1000;
    w->buf = lc_calloc(w->cap_frames * CHANNELS, sizeof(int16_t));
    *out = w;
    return LC_OK;
}

/* Writes the frames both channels have, keeps the leading channel's extra samples. */
static lc_status_t
flush(md_wav_t *w)
{
    size_t both = w->filled[0] < w->filled[1] ? w->filled[0] : w->filled[1];
    if (both == 0)
        return LC_OK;
    lc_status_t s = LC_OK;
    size_t frames = both;
    if (w->data_bytes + (uint64_t) frames * FRAME_BYTES > MAX_DATA_BYTES)
        frames = (size_t) ((MAX_DATA_BYTES - w->data_bytes) / FRAME_BYTES);
    if (frames > 0) {
        w->stats.writes++;
        if (write_all(w->fd, w->buf, frames * FRAME_BYTES, 0, false)) {
            w->data_bytes += (uint64_t) frames * FRAME_BYTES;
            w->stats.frames_written += frames;
        } else {
            LC_LOG_RL(LC_LOG_WARN, "wav", 1, "write to %s: %s", w->path, strerror(errno));
            /* Drop a partly written batch so the file stays exactly header + data_bytes. */
            if (ftruncate(w->fd, (off_t) (HEADER_BYTES + w->data_bytes)) == 0)
                (void) lseek(w->fd, 0, SEEK_END);
            w->stats.write_errors++;
            w->stats.dropped_samples += (uint64_t) frames * CHANNELS;
            s = LC_ERR_IO;
        }
    }
    w->stats.dropped_samples += (uint64_t) (both - frames) * CHANNELS;
    size_t lead = w->filled[0] > w->filled[1] ? w->filled[0] : w->filled[1];
    memmove(w->buf, w->buf + both * CHANNELS, (lead - both) * FRAME_BYTES);
    w->filled[0] -= both;
    w->filled[1] -= both;
    return s;
}

static void
pad(md_wav_t *w, int channel, size_t to_frames)
{
    for (size_t i = w->filled[channel]; i < to_frames; i++)
        w->buf[i * CHANNELS + (size_t) channel] = 0;
    if (to_frames > w->filled[channel]) {
        w->stats.padded_samples += to_frames - w->filled[channel];
        w->filled[channel] = to_frames;
    }
}

lc_status_t
md_wav_write(md_wav_t *w, md_wav_channel_t channel, const int16_t *pcm, size_t samples)
{
    if (w == NULL || (channel != MD_WAV_CALLER && channel != MD_WAV_AGENT) ||
        (pcm == NULL && samples > 0))
        return LC_ERR_INVALID;
    int ch = (int) channel;
    int other = 1 - ch;
    lc_status_t s = LC_OK;
    while (samples > 0) {
        if (w->filled[ch] == w->cap_frames) {
            /* This channel is MD_WAV_MAX_SKEW_MS ahead: the other one stalled. */
            pad(w, other, w->filled[ch]);
            if (flush(w) != LC_OK)
                s = LC_ERR_IO;
        }
        size_t space = w->cap_frames - w->filled[ch];
        size_t n = samples < space ? samples : space;
        int16_t *dst = w->buf + w->filled[ch] * CHANNELS + ch;
        for (size_t i = 0; i < n; i++)
            dst[i * CHANNELS] = pcm[i];
        w->filled[ch] += n;
        pcm += n;
        samples -= n;
        if (w->filled[0] >= w->flush_frames && w->filled[1] >= w->flush_frames && flush(w) != LC_OK)
            s = LC_ERR_IO;
    }
    return s;
}

lc_status_t
md_wav_close(md_wav_t *w)
{
    if (w == NULL)
        return LC_OK;
    lc_status_t s = LC_OK;
    size_t lead = w->filled[0] > w->filled[1] ? w->filled[0] : w->filled[1];
    pad(w, 0, lead);
    pad(w, 1, lead);
    if (flush(w) != LC_OK)
        s = LC_ERR_IO;
    uint8_t h[HEADER_BYTES];
    make_header(h, w->rate_hz, (uint32_t) w->data_bytes);
    if (!write_all(w->fd, h, sizeof(h), 0, true)) {
        LC_WARN("wav", "cannot finish the header of %s: %s", w->path, strerror(errno));
        s = LC_ERR_IO;
    }
    if (close(w->fd) != 0) {
        LC_WARN("wav", "close %s: %s", w->path, strerror(errno));
        s = LC_ERR_IO;
    }
    free(w->buf);
    free(w->path);
    free(w);
    return s;
}

void
md_wav_destroy(md_wav_t *w)
{
    (void) md_wav_close(w);
}

void
md_wav_get_stats(const md_wav_t *w, md_wav_stats_t *out)
{
    if (out == NULL)
        return;
    if (w == NULL)
        memset(out, 0, sizeof(*out));
    else
        *out = w->stats;
}
