#!/usr/bin/python3
"""Writes the seed corpora of the media fuzz targets (tests/fuzz/corpus/{rtp,rtcp,dtmf4733,sdes}).

Real packets come from the captures sip-tester ships (/usr/share/sip-tester/*.pcap: RFC 2833
DTMF and G.711 A-law); the rest are hand-made edge cases, one per malformed class. Run it
again after changing it; the output is deterministic and is committed.

    /usr/bin/python3 tests/fuzz/media_seeds.py
"""
import glob
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
PCAPS = "/usr/share/sip-tester"


def udp_payloads(path):
    """UDP payloads of a classic little-endian Ethernet/IPv4 pcap."""
    data = open(path, "rb").read()
    magic, _, _, _, _, _, link = struct.unpack("<IHHiIII", data[:24])
    assert magic == 0xA1B2C3D4 and link == 1, path
    off, out = 24, []
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack("<IIII", data[off:off + 16])
        pkt = data[off + 16:off + 16 + incl]
        off += 16 + incl
        if len(pkt) < 42 or pkt[12:14] != b"\x08\x00" or pkt[23] != 17:
            continue
        ihl = (pkt[14] & 0x0F) * 4
        udp = pkt[14 + ihl:]
        length = struct.unpack(">H", udp[4:6])[0]
        out.append(udp[8:length])
    return out


def rtp(pt, seq=1, ts=160, ssrc=0x01020304, payload=b"", marker=False, first=0x80):
    return bytes([first, (0x80 if marker else 0) | pt]) + struct.pack(">HII", seq, ts, ssrc) + payload


def write(corpus, name, data):
    d = os.path.join(ROOT, corpus)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def rtp_seeds():
    g711a = udp_payloads(os.path.join(PCAPS, "g711a.pcap"))
    for i in (0, 1, 2, 100, len(g711a) - 1):
        write("rtp", "g711a-%03d" % i, g711a[i])
    for path in sorted(glob.glob(os.path.join(PCAPS, "dtmf_2833_*.pcap"))):
        pkts = udp_payloads(path)
        name = os.path.basename(path)[len("dtmf_2833_"):-len(".pcap")]
        write("rtp", "dtmf-%s-start" % name, pkts[0])
        write("rtp", "dtmf-%s-end" % name, pkts[-1])
    write("rtp", "pcmu-silence", rtp(0, payload=b"\xff" * 160))
    write("rtp", "g722", rtp(9, payload=bytes(range(160))))
    # opus TOCs: SILK WB 20 ms (code 0), CELT FB 20 ms, code 3 with padding, a bare TOC
    write("rtp", "opus-silk", rtp(96, payload=b"\x48" + bytes(range(1, 40))))
    write("rtp", "opus-celt", rtp(96, payload=b"\xfc" + bytes(range(200, 255))))
    write("rtp", "opus-code3", rtp(96, payload=b"\x4b\x43\x05" + b"\x00" * 20))
    write("rtp", "opus-toc-only", rtp(96, payload=b"\x48"))
    write("rtp", "empty", b"")
    write("rtp", "short-11", rtp(0)[:11])
    write("rtp", "header-only", rtp(0))
    for v in (0, 1, 3):
        write("rtp", "version-%d" % v, rtp(0, first=v << 6, payload=b"\x00" * 8))
    write("rtp", "csrc-past-end", rtp(0, first=0x8F, payload=b"\x00" * 20))
    write("rtp", "csrc-15", rtp(0, first=0x8F, payload=b"\x11" * 60 + b"\xff" * 4))
    write("rtp", "ext-header-cut", rtp(0, first=0x90, payload=b"\xbe\xde"))
    write("rtp", "ext-past-end", rtp(0, first=0x90, payload=b"\xbe\xde\x00\x04" + b"\x00" * 8))
    write("rtp", "ext-one-byte", rtp(0, first=0x90, payload=b"\xbe\xde\x00\x01\x10\xaa\x00\x00" + b"\xff" * 160))
    write("rtp", "ext-max-length", rtp(0, first=0x90, payload=b"\x10\x00\xff\xff" + b"\x00" * 16))
    write("rtp", "padding-zero", rtp(0, first=0xA0, payload=b"\xff" * 7 + b"\x00"))
    write("rtp", "padding-too-big", rtp(0, first=0xA0, payload=b"\xff" * 7 + b"\x09"))
    write("rtp", "padding-all", rtp(0, first=0xA0, payload=b"\x00" * 7 + b"\x08"))
    write("rtp", "padding-ok", rtp(0, first=0xA0, payload=b"\xff" * 160 + b"\x00\x00\x03"))
    write("rtp", "padding-ext-csrc", rtp(0, first=0xB2, payload=b"\x00" * 8 + b"\xbe\xde\x00\x01\x00\x00\x00\x00" + b"\xff" * 4 + b"\x00\x04"))
    write("rtp", "muxed-rtcp-sr", rtcp_sr(blocks=1))
    write("rtp", "pt-72-no-marker", rtp(72, payload=b"\x00" * 4))
    write("rtp", "seq-wrap", rtp(0, seq=65535, ts=0xFFFFFF60, payload=b"\xff" * 160))


def rtcp_header(pt, count, body, padding=False):
    length = (4 + len(body)) // 4 - 1
    return bytes([0x80 | (0x20 if padding else 0) | count, pt]) + struct.pack(">H", length) + body


def report_block(ssrc, lost=0, highest=100, jitter=3, lsr=0x12345678, dlsr=0x8000):
    return struct.pack(">IB", ssrc, 5) + (lost & 0xFFFFFF).to_bytes(3, "big") + struct.pack(">IIII", highest, jitter, lsr, dlsr)


def rtcp_sr(blocks=1):
    body = struct.pack(">IIIIII", 0xAAAA0001, 0xE1234567, 0x80000000, 160000, 1000, 160000)
    body += b"".join(report_block(0xBBBB0000 + i) for i in range(blocks))
    return rtcp_header(200, blocks, body)


def sdes(cname=b"peer@host"):
    chunk = struct.pack(">I", 0xAAAA0001) + bytes([1, len(cname)]) + cname
    chunk += b"\x00" * (4 - len(chunk) % 4)
    return rtcp_header(202, 1, chunk)


def bye(reason=b""):
    body = struct.pack(">I", 0xAAAA0001)
    if reason:
        r = bytes([len(reason)]) + reason
        body += r + b"\x00" * ((4 - len(r) % 4) % 4)
    return rtcp_header(203, 1, body)


def rtcp_seeds():
    write("rtcp", "sr-sdes", rtcp_sr(1) + sdes())
    write("rtcp", "sr-sdes-bye", rtcp_sr(2) + sdes() + bye(b"hangup"))
    write("rtcp", "rr-sdes", rtcp_header(201, 1, struct.pack(">I", 7) + report_block(9, lost=-3)) + sdes())
    write("rtcp", "rr-empty", rtcp_header(201, 0, struct.pack(">I", 7)))
    write("rtcp", "sr-4-blocks", rtcp_sr(4) + sdes())
    write("rtcp", "sr-31-blocks-claimed", bytes([0x9F]) + rtcp_sr(1)[1:])
    write("rtcp", "app", rtcp_header(201, 0, struct.pack(">I", 7)) + rtcp_header(204, 0, struct.pack(">I", 7) + b"NAME" + b"\x00" * 8))
    write("rtcp", "xr-and-fb", rtcp_header(201, 0, struct.pack(">I", 7)) + rtcp_header(207, 0, struct.pack(">I", 7) + b"\x00" * 8) + rtcp_header(205, 1, struct.pack(">II", 7, 9)))
    last = bye()
    padded = bytes([last[0] | 0x20]) + last[1:2] + struct.pack(">H", 2) + last[4:8] + b"\x00\x00\x00\x04"
    write("rtcp", "padding-last", rtcp_sr(1) + padded)
    write("rtcp", "padding-not-last", bytes([0xA1]) + rtcp_sr(1)[1:] + sdes())
    write("rtcp", "padding-zero", rtcp_sr(1) + padded[:-1] + b"\x00")
    write("rtcp", "length-past-end", rtcp_sr(1)[:2] + b"\x00\x40" + rtcp_sr(1)[4:])
    write("rtcp", "truncated", (rtcp_sr(1) + sdes())[:50])
    write("rtcp", "version-1", bytes([0x41]) + rtcp_sr(1)[1:])
    write("rtcp", "many-packets", rtcp_header(201, 0, struct.pack(">I", 7)) * 40)
    write("rtcp", "rtp-packet", rtp(0, payload=b"\xff" * 160))
    write("rtcp", "odd-length", rtcp_sr(1) + b"\x00\x00")


def dtmf_seeds():
    """Records of 4-byte RTP timestamp + 4-byte payload, as the target reads them."""
    for path in sorted(glob.glob(os.path.join(PCAPS, "dtmf_2833_*.pcap"))):
        recs = b""
        for p in udp_payloads(path):
            recs += p[4:8] + p[12:16]
        write("dtmf4733", os.path.basename(path)[:-5], recs)
    def press(ts, ev, dur=800, ends=3, step=160):
        r = struct.pack(">I", ts) + bytes([ev, 10]) + struct.pack(">H", 0)
        d = step
        while d < dur:
            r += struct.pack(">I", ts) + bytes([ev, 10]) + struct.pack(">H", d)
            d += step
        for _ in range(ends):
            r += struct.pack(">I", ts) + bytes([ev, 0x8A]) + struct.pack(">H", dur)
        return r
    write("dtmf4733", "repeat-55", press(1000, 5) + press(3000, 5))
    write("dtmf4733", "ends-only", struct.pack(">I", 5000) + b"\x09\x8a\x01\x90" * 1 + struct.pack(">I", 5000) + b"\x09\x8a\x01\x90")
    write("dtmf4733", "straggler", press(7000, 11) + struct.pack(">I", 5000) + b"\x09\x8a\x01\x90")
    write("dtmf4733", "wrap", press(0xFFFFFF00, 1) + press(0x100, 2))
    write("dtmf4733", "flash-and-tones", press(100, 16) + press(900, 255) + press(2000, 15))
    write("dtmf4733", "48k", b"\x01" + press(1001, 3, dur=4800, step=960)[1:])
    write("dtmf4733", "long-duration", press(100, 0, dur=65535, ends=3, step=8000))
    write("dtmf4733", "short", b"\x05\x8a\x03")


def sdes_seeds():
    key = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"
    lines = {
        "suite-80": "1 AES_CM_128_HMAC_SHA1_80 inline:" + key,
        "suite-32-lifetime": "2 AES_CM_128_HMAC_SHA1_32 inline:" + key + "|2^31",
        "session-params": "3 AES_CM_128_HMAC_SHA1_80 inline:" + key + "|1048576 WSH=64 KDR=0\r\n",
        "mki": "1 AES_CM_128_HMAC_SHA1_80 inline:" + key + "|2^20|1:32",
        "two-keys": "1 AES_CM_128_HMAC_SHA1_80 inline:" + key + ";inline:" + key,
        "gcm": "1 AEAD_AES_256_GCM inline:" + key + key,
        "unencrypted": "1 AES_CM_128_HMAC_SHA1_80 inline:" + key + " UNENCRYPTED_SRTP",
        "short-key": "1 AES_CM_128_HMAC_SHA1_80 inline:" + key[:-1],
        "padded-key": "1 AES_CM_128_HMAC_SHA1_80 inline:" + key[:-1] + "=",
        "bad-char": "1 AES_CM_128_HMAC_SHA1_80 inline:" + key[:-2] + "!R",
        "tag-10-digits": "1234567890 AES_CM_128_HMAC_SHA1_80 inline:" + key,
        "no-method": "1 AES_CM_128_HMAC_SHA1_80 " + key,
        "empty": "",
        # found by libFuzzer: tag 0 parsed but did not format back
        "regress-tag-zero": "0 AES_CM_128_HMAC_SHA1_80 inline:" + key + "|6 WSH=4104576 WSH=64 KDR=0\r\n",
    }
    for name, line in lines.items():
        write("sdes", name, line.encode())


if __name__ == "__main__":
    rtp_seeds()
    rtcp_seeds()
    dtmf_seeds()
    sdes_seeds()
    for c in ("rtp", "rtcp", "dtmf4733", "sdes"):
        print(c, len(os.listdir(os.path.join(ROOT, c))), "seeds")
