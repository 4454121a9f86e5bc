/*
 * voxi_rtp_load: a SIP + RTP load generator for the media worker benchmark
 * (tests/bench/bench_media.py). One process, one epoll loop, SIP over UDP with a minimal
 * INVITE / ACK / BYE (RFC 3261 timer A retransmissions), one RTP socket per call sending real
 * PCMU or Opus payloads every 20 ms from a timerfd, and a receiver that measures the worker's
 * outbound packets: the spacing of consecutive packets (kernel receive timestamps,
 * SO_TIMESTAMPNS, so our own scheduling does not blur them) and loss by sequence numbers.
 *
 *   voxi_rtp_load hold  HOST:PORT USER CODEC CALLS RATE HOLD_S PID
 *       sets up CALLS calls at RATE per second, sends and receives audio, measures for HOLD_S
 *       seconds once all are up (CPU of PID from /proc), then BYEs them all
 *   voxi_rtp_load churn HOST:PORT USER CODEC RATE DURATION_S HOLD_MS PID
 *       starts RATE calls per second for DURATION_S seconds, each hung up HOLD_MS after its
 *       200 (audio flows meanwhile): INVITE-to-200 latency and failures
 *
 * CODEC: pcmu | opus. Prints one JSON object on stdout. Exit 0 when it ran (whatever the
 * figures), 2 on usage or setup errors.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <opus.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define FRAMES 50
#define MAX_CALLS 20000
#define INVITE_TIMEOUT_NS (8LL * 1000000000LL)
#define T1_NS (500LL * 1000000LL)
#define DEV_BUCKET_US 10
#define DEV_BUCKETS 20000 /* up to 200 ms */
#define LAT_BUCKET_MS 1
#define LAT_BUCKETS 10000

typedef enum { C_IDLE = 0, C_INVITING, C_UP, C_BYEING, C_DONE, C_FAILED } call_state_t;

typedef struct {
    call_state_t state;
    int idx;
    char call_id[64];
    char from_tag[24];
    char to_tag[96];
    int rtp_fd;
    int rtp_port;
    struct sockaddr_in remote_rtp;
    bool have_remote;
    uint16_t seq;
    uint32_t ts, ssrc;
    int frame;
    int64_t invite_ns, answered_ns, next_retrans_ns, retrans_interval_ns, hangup_at_ns;
    int retrans;
    /* receiver */
    bool rx_started;
    uint16_t rx_last_seq;
    int64_t rx_last_ns;
    uint64_t rx_packets, rx_expected;
} call_t;

static struct {
    bool opus;
    const char *user;
    struct sockaddr_in target;
    int sip_fd, ep, tfd;
    int local_sip_port;
    call_t *calls;
    int ncalls;
    uint8_t payload[FRAMES][400];
    size_t payload_len[FRAMES];
    int pt;
    uint32_t ts_step;
    bool measuring;
    uint64_t dev_hist[DEV_BUCKETS];
    uint64_t dev_count;
    uint64_t lat_hist[LAT_BUCKETS];
    uint64_t lat_count;
    int setup_ok, setup_failed, bye_failed, bye_ok;
    uint64_t tx_packets;
} g;

static int64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t
realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- payloads ---- */

static uint8_t
linear_to_ulaw(int16_t pcm)
{
    const int bias = 0x84, clip = 32635;
    int sign = (pcm >> 8) & 0x80;
    int sample = sign ? -pcm : pcm;
    if (sample > clip)
        sample = clip;
    sample += bias;
    int exponent = 7;
    for (int mask = 0x4000; (sample & mask) == 0 && exponent > 0; mask >>= 1)
        exponent--;
    int mantissa = (sample >> (exponent + 3)) & 0x0F;
    return (uint8_t) ~(sign | (exponent << 4) | mantissa);
}

/* A second of a voice-like signal (two tones, amplitude-modulated) as 50 encoded frames. */
static int
make_payloads(void)
{
    int rate = g.opus ? 16000 : 8000;
    int n = rate / 50;
    int16_t pcm[320];
    OpusEncoder *enc = NULL;
    if (g.opus) {
        int err = 0;
        enc = opus_encoder_create(16000, 1, OPUS_APPLICATION_VOIP, &err);
        if (enc == NULL)
            return -1;
        opus_encoder_ctl(enc, OPUS_SET_BITRATE(24000));
    }
    for (int f = 0; f < FRAMES; f++) {
        for (int i = 0; i < n; i++) {
            double t = (double) (f * n + i) / rate;
            double env = 0.5 + 0.5 * sin(2 * M_PI * 3 * t);
            pcm[i] =
                (int16_t) (6000 * env * (sin(2 * M_PI * 220 * t) + 0.5 * sin(2 * M_PI * 660 * t)));
        }
        if (g.opus) {
            int len = opus_encode(enc, pcm, n, g.payload[f], (opus_int32) sizeof(g.payload[f]));
            if (len <= 0)
                return -1;
            g.payload_len[f] = (size_t) len;
        } else {
            for (int i = 0; i < n; i++)
                g.payload[f][i] = linear_to_ulaw(pcm[i]);
            g.payload_len[f] = (size_t) n;
        }
    }
    if (enc)
        opus_encoder_destroy(enc);
    g.pt = g.opus ? 111 : 0;
    g.ts_step = g.opus ? 960 : 160;
    return 0;
}

/* ---- SIP ---- */

static void
sip_send(const char *buf, size_t len)
{
    sendto(g.sip_fd, buf, len, 0, (const struct sockaddr *) &g.target, sizeof(g.target));
}

static void
send_invite(call_t *c)
{
    char sdp[512], msg[2048];
    int sdplen;
    if (g.opus)
        sdplen = snprintf(sdp, sizeof(sdp),
                          "v=0\r\no=load %d 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
                          "t=0 0\r\nm=audio %d RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\n"
                          "a=fmtp:111 useinbandfec=0\r\na=ptime:20\r\n",
                          c->idx, c->rtp_port);
    else
        sdplen = snprintf(sdp, sizeof(sdp),
                          "v=0\r\no=load %d 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
                          "t=0 0\r\nm=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\n",
                          c->idx, c->rtp_port);
    char host[64];
    inet_ntop(AF_INET, &g.target.sin_addr, host, sizeof(host));
    int port = ntohs(g.target.sin_port);
    int len = snprintf(msg, sizeof(msg),
                       "INVITE sip:%s@%s:%d SIP/2.0\r\n"
                       "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-inv-%s;rport\r\n"
                       "From: <sip:load@127.0.0.1:%d>;tag=%s\r\n"
                       "To: <sip:%s@%s:%d>\r\n"
                       "Call-ID: %s\r\nCSeq: 1 INVITE\r\n"
                       "Contact: <sip:load@127.0.0.1:%d>\r\nMax-Forwards: 70\r\n"
                       "Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
                       g.user, host, port, g.local_sip_port, c->call_id, g.local_sip_port,
                       c->from_tag, g.user, host, port, c->call_id, g.local_sip_port, sdplen, sdp);
    sip_send(msg, (size_t) len);
}

static void
send_in_dialog(call_t *c, const char *method, int cseq)
{
    char host[64], msg[1024];
    inet_ntop(AF_INET, &g.target.sin_addr, host, sizeof(host));
    int port = ntohs(g.target.sin_port);
    int len = snprintf(msg, sizeof(msg),
                       "%s sip:voxi@%s:%d SIP/2.0\r\n"
                       "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-%s-%s-%d;rport\r\n"
                       "From: <sip:load@127.0.0.1:%d>;tag=%s\r\n"
                       "To: <sip:%s@%s:%d>;tag=%s\r\n"
                       "Call-ID: %s\r\nCSeq: %d %s\r\nMax-Forwards: 70\r\n"
                       "Content-Length: 0\r\n\r\n",
                       method, host, port, g.local_sip_port, method, c->call_id, c->retrans,
                       g.local_sip_port, c->from_tag, g.user, host, port, c->to_tag, c->call_id,
                       cseq, method);
    sip_send(msg, (size_t) len);
}

static int
rtp_socket(int *port_out)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on));
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* an even port, as RTP wants, from the ephemeral range */
    for (int tries = 0; tries < 200; tries++) {
        a.sin_port = 0;
        if (bind(fd, (struct sockaddr *) &a, sizeof(a)) != 0)
            break;
        socklen_t l = sizeof(a);
        getsockname(fd, (struct sockaddr *) &a, &l);
        if ((ntohs(a.sin_port) & 1) == 0) {
            *port_out = ntohs(a.sin_port);
            return fd;
        }
        close(fd);
        fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    }
    close(fd);
    return -1;
}

static void
start_call(call_t *c)
{
    c->rtp_fd = rtp_socket(&c->rtp_port);
    if (c->rtp_fd < 0) {
        c->state = C_FAILED;
        g.setup_failed++;
        return;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t) c->idx + 16};
    epoll_ctl(g.ep, EPOLL_CTL_ADD, c->rtp_fd, &ev);
    snprintf(c->call_id, sizeof(c->call_id), "load-%d-%08x", c->idx, (unsigned) rand());
    snprintf(c->from_tag, sizeof(c->from_tag), "%08x", (unsigned) rand());
    c->ssrc = (uint32_t) rand();
    c->seq = (uint16_t) rand();
    c->ts = (uint32_t) rand();
    c->invite_ns = now_ns();
    c->retrans_interval_ns = T1_NS;
    c->next_retrans_ns = c->invite_ns + T1_NS;
    c->state = C_INVITING;
    send_invite(c);
}

static void
close_rtp(call_t *c)
{
    if (c->rtp_fd >= 0) {
        epoll_ctl(g.ep, EPOLL_CTL_DEL, c->rtp_fd, NULL);
        close(c->rtp_fd);
        c->rtp_fd = -1;
    }
}

static void
hangup(call_t *c)
{
    if (c->state != C_UP)
        return;
    c->state = C_BYEING;
    c->retrans = 0;
    c->retrans_interval_ns = T1_NS;
    c->next_retrans_ns = now_ns() + T1_NS;
    send_in_dialog(c, "BYE", 2);
}

/* The value of a header (name or compact name) in a message, copied; "" if absent. */
static void
header(const char *msg, const char *name, const char *compact, char *out, size_t size)
{
    out[0] = '\0';
    for (const char *line = msg; line && *line; line = strstr(line, "\r\n")) {
        if (line != msg)
            line += 2;
        if (line[0] == '\r')
            return; /* end of headers */
        size_t nl = strlen(name), cl = compact ? strlen(compact) : 0;
        const char *v = NULL;
        if (strncasecmp(line, name, nl) == 0 && (line[nl] == ':' || line[nl] == ' '))
            v = line + nl;
        else if (compact && strncasecmp(line, compact, cl) == 0 &&
                 (line[cl] == ':' || line[cl] == ' '))
            v = line + cl;
        if (v) {
            while (*v == ' ' || *v == ':' || *v == '\t')
                v++;
            const char *end = strstr(v, "\r\n");
            size_t n = end ? (size_t) (end - v) : strlen(v);
            if (n >= size)
                n = size - 1;
            memcpy(out, v, n);
            out[n] = '\0';
            return;
        }
    }
}

static void
on_sip(void)
{
    char buf[8192];
    for (;;) {
        ssize_t n = recv(g.sip_fd, buf, sizeof(buf) - 1, 0);
        if (n <= 0)
            return;
        buf[n] = '\0';
        if (strncmp(buf, "SIP/2.0 ", 8) != 0)
            continue; /* requests from the worker (a BYE on shutdown): ignore */
        int code = atoi(buf + 8);
        char cid[128], cseq[64], to[256];
        header(buf, "Call-ID", "i", cid, sizeof(cid));
        header(buf, "CSeq", NULL, cseq, sizeof(cseq));
        header(buf, "To", "t", to, sizeof(to));
        int idx = -1;
        if (sscanf(cid, "load-%d-", &idx) != 1 || idx < 0 || idx >= g.ncalls)
            continue;
        call_t *c = &g.calls[idx];
        if (strcmp(c->call_id, cid) != 0)
            continue;
        bool invite = strstr(cseq, "INVITE") != NULL;
        if (invite && c->state == C_INVITING) {
            if (code < 200) {
                c->next_retrans_ns = INT64_MAX; /* timer A stops on a provisional */
                continue;
            }
            if (code >= 300) {
                c->state = C_FAILED;
                g.setup_failed++;
                close_rtp(c);
                /* the ACK of a non-2xx is hop-by-hop: the worker stops retransmitting */
                continue;
            }
            const char *tag = strstr(to, "tag=");
            snprintf(c->to_tag, sizeof(c->to_tag), "%s", tag ? tag + 4 : "");
            char *semi = strchr(c->to_tag, ';');
            if (semi)
                *semi = '\0';
            const char *body = strstr(buf, "\r\n\r\n");
            const char *m = body ? strstr(body, "m=audio ") : NULL;
            const char *cl = body ? strstr(body, "c=IN IP4 ") : NULL;
            if (m && cl) {
                char addr[64] = "";
                sscanf(cl + 9, "%63[0-9.]", addr);
                c->remote_rtp.sin_family = AF_INET;
                c->remote_rtp.sin_port = htons((uint16_t) atoi(m + 8));
                inet_pton(AF_INET, addr, &c->remote_rtp.sin_addr);
                c->have_remote = true;
            }
            c->answered_ns = now_ns();
            int64_t lat_ms = (c->answered_ns - c->invite_ns) / 1000000;
            g.lat_hist[lat_ms < LAT_BUCKETS ? lat_ms : LAT_BUCKETS - 1]++;
            g.lat_count++;
            g.setup_ok++;
            c->state = C_UP;
            send_in_dialog(c, "ACK", 1);
        } else if (invite && code >= 200 && code < 300 &&
                   (c->state == C_UP || c->state == C_BYEING)) {
            send_in_dialog(c, "ACK", 1); /* a retransmitted 200: ACK again */
        } else if (!invite && c->state == C_BYEING && code >= 200) {
            c->state = C_DONE;
            g.bye_ok++;
            close_rtp(c);
        }
    }
}

/* ---- RTP ---- */

static void
send_rtp(call_t *c)
{
    if (!c->have_remote)
        return;
    uint8_t pkt[12 + 400];
    int f = c->frame++ % FRAMES;
    pkt[0] = 0x80;
    pkt[1] = (uint8_t) g.pt;
    pkt[2] = (uint8_t) (c->seq >> 8);
    pkt[3] = (uint8_t) c->seq;
    uint32_t ts = c->ts, ssrc = c->ssrc;
    for (int i = 0; i < 4; i++) {
        pkt[4 + i] = (uint8_t) (ts >> (24 - 8 * i));
        pkt[8 + i] = (uint8_t) (ssrc >> (24 - 8 * i));
    }
    memcpy(pkt + 12, g.payload[f], g.payload_len[f]);
    sendto(c->rtp_fd, pkt, 12 + g.payload_len[f], 0, (struct sockaddr *) &c->remote_rtp,
           sizeof(c->remote_rtp));
    c->seq++;
    c->ts += g.ts_step;
    g.tx_packets++;
}

static void
on_rtp(call_t *c)
{
    uint8_t buf[2048];
    char ctrl[256];
    for (;;) {
        struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
        struct msghdr mh = {
            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl, .msg_controllen = sizeof(ctrl)};
        ssize_t n = recvmsg(c->rtp_fd, &mh, 0);
        if (n < 0)
            return;
        if (n < 12 || (buf[0] >> 6) != 2 || ((buf[1] & 0x7f) >= 72 && (buf[1] & 0x7f) <= 76))
            continue; /* not RTP (RTCP, 200-204, goes to the odd port anyway) */
        int64_t t = 0;
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
            if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) {
                struct timespec ts;
                memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
                t = (int64_t) ts.tv_sec * 1000000000LL + ts.tv_nsec;
            }
        if (t == 0)
            t = realtime_ns();
        uint16_t seq = (uint16_t) ((buf[2] << 8) | buf[3]);
        if (!g.measuring) {
            c->rx_started = false;
            continue;
        }
        if (!c->rx_started) {
            c->rx_started = true;
            c->rx_last_seq = seq;
            c->rx_last_ns = t;
            c->rx_packets = 1;
            c->rx_expected = 1;
            continue;
        }
        int16_t diff = (int16_t) (seq - c->rx_last_seq);
        if (diff <= 0)
            continue; /* duplicate or reordered: not counted twice */
        c->rx_expected += (uint64_t) diff;
        c->rx_packets++;
        if (diff == 1) {
            int64_t dev_us = llabs((t - c->rx_last_ns) / 1000 - 20000);
            int64_t b = dev_us / DEV_BUCKET_US;
            g.dev_hist[b < DEV_BUCKETS ? b : DEV_BUCKETS - 1]++;
            g.dev_count++;
        }
        c->rx_last_seq = seq;
        c->rx_last_ns = t;
    }
}

/* ---- the loop ---- */

static void
retransmit(int64_t now)
{
    for (int i = 0; i < g.ncalls; i++) {
        call_t *c = &g.calls[i];
        if (c->state == C_INVITING && now - c->invite_ns > INVITE_TIMEOUT_NS) {
            c->state = C_FAILED;
            g.setup_failed++;
            close_rtp(c);
        } else if (c->state == C_BYEING && c->retrans > 6) {
            c->state = C_DONE;
            g.bye_failed++;
            close_rtp(c);
        } else if ((c->state == C_INVITING || c->state == C_BYEING) && now >= c->next_retrans_ns) {
            c->retrans++;
            c->retrans_interval_ns *= 2;
            if (c->retrans_interval_ns > 4000LL * 1000000LL)
                c->retrans_interval_ns = 4000LL * 1000000LL;
            c->next_retrans_ns = now + c->retrans_interval_ns;
            if (c->state == C_INVITING)
                send_invite(c);
            else
                send_in_dialog(c, "BYE", 2);
        }
    }
}

static void
poll_once(int timeout_ms, int64_t now)
{
    struct epoll_event evs[256];
    int n = epoll_wait(g.ep, evs, 256, timeout_ms);
    for (int i = 0; i < n; i++) {
        uint32_t id = evs[i].data.u32;
        if (id == 1) {
            on_sip();
        } else if (id == 2) {
            uint64_t ticks;
            if (read(g.tfd, &ticks, sizeof(ticks)) == sizeof(ticks))
                for (int k = 0; k < g.ncalls; k++)
                    if (g.calls[k].state == C_UP)
                        send_rtp(&g.calls[k]);
            retransmit(now);
        } else if (id >= 16) {
            on_rtp(&g.calls[id - 16]);
        }
    }
}

static double
cpu_seconds(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    if (p == NULL)
        return -1;
    unsigned long utime = 0, stime = 0;
    /* after ")": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
     */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
        return -1;
    return (double) (utime + stime) / (double) sysconf(_SC_CLK_TCK);
}

static double
hist_percentile(const uint64_t *hist, int buckets, uint64_t count, double pct, double unit)
{
    if (count == 0)
        return -1;
    uint64_t want = (uint64_t) ceil((double) count * pct / 100.0), seen = 0;
    for (int i = 0; i < buckets; i++) {
        seen += hist[i];
        if (seen >= want)
            return (i + 1) * unit;
    }
    return buckets * unit;
}

static int
usage(void)
{
    fprintf(stderr,
            "usage: voxi_rtp_load hold  HOST:PORT USER pcmu|opus CALLS RATE HOLD_S PID\n"
            "       voxi_rtp_load churn HOST:PORT USER pcmu|opus RATE DURATION_S HOLD_MS PID\n");
    return 2;
}

int
main(int argc, char **argv)
{
    if (argc != 9)
        return usage();
    bool churn = strcmp(argv[1], "churn") == 0;
    if (!churn && strcmp(argv[1], "hold") != 0)
        return usage();
    char host[64];
    int port;
    if (sscanf(argv[2], "%63[^:]:%d", host, &port) != 2)
        return usage();
    g.target.sin_family = AF_INET;
    g.target.sin_port = htons((uint16_t) port);
    if (inet_pton(AF_INET, host, &g.target.sin_addr) != 1)
        return usage();
    g.user = argv[3];
    g.opus = strcmp(argv[4], "opus") == 0;
    double rate;
    int calls, hold_s = 0, duration_s = 0, hold_ms = 0;
    if (churn) {
        rate = atof(argv[5]);
        duration_s = atoi(argv[6]);
        hold_ms = atoi(argv[7]);
        calls = (int) (rate * duration_s);
    } else {
        calls = atoi(argv[5]);
        rate = atof(argv[6]);
        hold_s = atoi(argv[7]);
    }
    int pid = atoi(argv[8]);
    if (calls <= 0 || calls > MAX_CALLS || rate <= 0)
        return usage();
    srand((unsigned) (now_ns() ^ getpid()));
    if (make_payloads() != 0) {
        fprintf(stderr, "cannot encode payloads\n");
        return 2;
    }
    g.calls = calloc((size_t) calls, sizeof(call_t));
    g.ncalls = calls;
    for (int i = 0; i < calls; i++) {
        g.calls[i].idx = i;
        g.calls[i].rtp_fd = -1;
    }
    g.sip_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int rcvbuf = 8 << 20;
    setsockopt(g.sip_fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    struct sockaddr_in me = {.sin_family = AF_INET};
    me.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(g.sip_fd, (struct sockaddr *) &me, sizeof(me)) != 0)
        return 2;
    socklen_t ml = sizeof(me);
    getsockname(g.sip_fd, (struct sockaddr *) &me, &ml);
    g.local_sip_port = ntohs(me.sin_port);
    g.ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 1};
    epoll_ctl(g.ep, EPOLL_CTL_ADD, g.sip_fd, &ev);
    g.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct itimerspec its = {.it_interval = {0, 20000000}, .it_value = {0, 20000000}};
    timerfd_settime(g.tfd, 0, &its, NULL);
    ev.data.u32 = 2;
    epoll_ctl(g.ep, EPOLL_CTL_ADD, g.tfd, &ev);

    int64_t t0 = now_ns();
    int started = 0;
    int64_t interval_ns = (int64_t) (1e9 / rate);
    double cpu0 = 0, cpu1 = 0;
    int64_t m0 = 0, m1 = 0;
    int64_t setup_end = 0;
    for (;;) {
        int64_t now = now_ns();
        while (started < calls && now >= t0 + (int64_t) started * interval_ns)
            start_call(&g.calls[started++]);
        if (churn) {
            for (int i = 0; i < calls; i++)
                if (g.calls[i].state == C_UP &&
                    now - g.calls[i].answered_ns >= (int64_t) hold_ms * 1000000LL)
                    hangup(&g.calls[i]);
            if (m0 == 0) {
                m0 = now;
                cpu0 = cpu_seconds(pid);
            }
        } else if (m0 == 0 && started == calls) {
            bool settled = true;
            for (int i = 0; i < calls && settled; i++)
                settled = g.calls[i].state != C_INVITING;
            if (settled) {
                setup_end = now;
                m0 = now;
                g.measuring = true;
                cpu0 = cpu_seconds(pid);
            }
        }
        if (!churn && m0 && now - m0 >= (int64_t) hold_s * 1000000000LL && m1 == 0) {
            m1 = now;
            cpu1 = cpu_seconds(pid);
            g.measuring = false;
            for (int i = 0; i < calls; i++)
                hangup(&g.calls[i]);
        }
        if (churn && started == calls && m1 == 0) {
            m1 = now;
            cpu1 = cpu_seconds(pid);
        }
        bool busy = false;
        for (int i = 0; i < calls && !busy; i++)
            busy = g.calls[i].state == C_INVITING || g.calls[i].state == C_BYEING ||
                   (g.calls[i].state == C_UP && (churn || m1 == 0)) || g.calls[i].state == C_IDLE;
        if (!busy)
            break;
        if (now - t0 > (int64_t) (duration_s + hold_s + 120) * 1000000000LL)
            break; /* a hard stop */
        poll_once(2, now);
    }
    double window_s = (double) (m1 - m0) / 1e9;
    double cpu_pct = window_s > 0 && cpu0 >= 0 && cpu1 >= 0 ? (cpu1 - cpu0) / window_s * 100 : -1;
    uint64_t rx = 0, expected = 0;
    for (int i = 0; i < calls; i++) {
        rx += g.calls[i].rx_packets;
        expected += g.calls[i].rx_expected;
    }
    int up = g.setup_ok;
    printf("{\"mode\":\"%s\",\"codec\":\"%s\",\"calls\":%d,\"rate\":%.1f,\"setup_ok\":%d,"
           "\"setup_failed\":%d,\"setup_failure_pct\":%.3f,\"setup_ms_p50\":%.0f,"
           "\"setup_ms_p99\":%.0f,\"setup_s\":%.2f,\"window_s\":%.2f,\"worker_cpu_pct\":%.1f,"
           "\"worker_cpu_pct_of_2_cores\":%.1f,\"cpu_pct_per_call\":%.4f,"
           "\"spacing_dev_ms_p50\":%.2f,\"spacing_dev_ms_p99\":%.2f,\"spacing_dev_ms_p999\":%.2f,"
           "\"rx_packets\":%llu,\"loss_pct\":%.3f,\"tx_packets\":%llu,\"bye_failed\":%d}\n",
           churn ? "churn" : "hold", g.opus ? "opus" : "pcmu", calls, rate, up, g.setup_failed,
           100.0 * g.setup_failed / calls,
           hist_percentile(g.lat_hist, LAT_BUCKETS, g.lat_count, 50, 1),
           hist_percentile(g.lat_hist, LAT_BUCKETS, g.lat_count, 99, 1),
           setup_end ? (double) (setup_end - t0) / 1e9 : 0.0, window_s, cpu_pct, cpu_pct / 2,
           up > 0 && !churn ? cpu_pct / up
                            : (churn && window_s > 0 ? cpu_pct / (rate * hold_ms / 1000.0) : 0),
           hist_percentile(g.dev_hist, DEV_BUCKETS, g.dev_count, 50, DEV_BUCKET_US / 1000.0),
           hist_percentile(g.dev_hist, DEV_BUCKETS, g.dev_count, 99, DEV_BUCKET_US / 1000.0),
           hist_percentile(g.dev_hist, DEV_BUCKETS, g.dev_count, 99.9, DEV_BUCKET_US / 1000.0),
           (unsigned long long) rx,
           expected ? 100.0 * (double) (expected - rx) / (double) expected : 0.0,
           (unsigned long long) g.tx_packets, g.bye_failed);
    for (int i = 0; i < calls; i++)
        close_rtp(&g.calls[i]);
    free(g.calls);
    close(g.sip_fd);
    close(g.tfd);
    close(g.ep);
    return 0;
}
