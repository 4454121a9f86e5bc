#!/usr/bin/python3
"""Writes the seed corpora of fuzz_sip and fuzz_sdp (tests/fuzz/corpus/{sip,sdp}).

Seeds: the RFC 4475 torture messages (../shared/testdata/sip/rfc4475), the messages of SIPp
runs of the system-test scenarios (tests/system/sipp/*.xml; pass their -trace_msg logs,
`<scenario>_<pid>_messages.log`, on the command line: requests SIPp sent and the worker's
responses), their SDP bodies, and hand-made SDP edge cases. Deterministic for the same
inputs; the output is committed.

    /usr/bin/python3 tests/fuzz/sip_seeds.py [sipp-message-logs...]
"""
import glob
import hashlib
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "corpus")
RFC4475 = os.path.join(HERE, "..", "..", "..", "shared", "testdata", "sip", "rfc4475")


def write(kind, name, data):
    os.makedirs(os.path.join(ROOT, kind), exist_ok=True)
    with open(os.path.join(ROOT, kind, name), "wb") as f:
        f.write(data)


def body_of(msg):
    head, sep, body = msg.partition(b"\r\n\r\n")
    return body if sep and body.strip() else None


def sipp_messages(path):
    """The messages of a SIPp -trace_msg log, with CRLF line ends."""
    text = open(path, "rb").read().decode("latin-1").replace("\r\n", "\n")
    parts = re.split(r"-{20,} [0-9-]+ [0-9:.]+\n(?:UDP|TCP) message (?:sent|received)"
                     r" [\[(]\d+(?: bytes)?[\])](?: bytes)? ?:\n\n?", text)
    out = []
    for p in parts[1:]:
        p = p.strip("\n")
        if not re.match(r"^([A-Z]+ \S+ SIP/2\.0|SIP/2\.0 \d{3})", p):
            continue
        lines = p.split("\n")
        head_end = lines.index("") if "" in lines else len(lines)
        msg = "\r\n".join(lines[:head_end]) + "\r\n\r\n" + "\r\n".join(lines[head_end + 1:])
        if head_end + 1 < len(lines):
            msg = msg.rstrip("\r\n") + "\r\n"
        out.append(msg.encode("latin-1"))
    return out


SDPS = {
    "pcmu.sdp": "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
                "m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
                "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\n",
    "opus.sdp": "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
                "m=audio 40000 RTP/AVP 111 9 0 110\r\na=rtpmap:111 opus/48000/2\r\n"
                "a=fmtp:111 minptime=10;useinbandfec=1;maxplaybackrate=16000\r\n"
                "a=rtpmap:9 G722/8000\r\na=rtpmap:110 telephone-event/48000\r\na=sendrecv\r\n",
    "savp.sdp": "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
                "m=audio 40000 RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
                "a=crypto:1 AES_CM_128_HMAC_SHA1_80 "
                "inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4\r\n"
                "a=crypto:2 AES_CM_128_HMAC_SHA1_32 "
                "inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj\r\n",
    "hold.sdp": "v=0\r\no=- 1 2 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
                "m=audio 40000 RTP/AVP 8\r\na=sendonly\r\n",
    "multi.sdp": "v=0\r\no=- 1 1 IN IP6 2001:db8::1\r\ns=-\r\nc=IN IP6 2001:db8::1\r\nt=0 0\r\n"
                 "m=video 5000 RTP/AVP 31\r\na=rtpmap:31 H261/90000\r\n"
                 "m=audio 0 RTP/AVP 0\r\nm=audio 40002 RTP/AVP 18 8\r\na=rtcp:40009\r\n"
                 "m=image 40004 udptl t38\r\n",
    "bad.sdp": "v=0\r\no=- 1 1 IN IP4 x\r\ns=-\r\nc=IN IP4 host.example\r\nt=0 0\r\n"
               "m=audio 99999 RTP/AVP 300 abc\r\na=rtpmap:300 PCMU/0\r\na=ptime:-5\r\n",
}


def main():
    for f in sorted(glob.glob(os.path.join(RFC4475, "*.dat"))):
        data = open(f, "rb").read()
        write("sip", "rfc4475_" + os.path.basename(f), data)
        body = body_of(data)
        if body and b"v=0" in body:
            write("sdp", "rfc4475_" + os.path.basename(f)[:-4] + ".sdp", body)
    for log in sys.argv[1:]:
        for msg in sipp_messages(log):
            digest = hashlib.sha1(msg).hexdigest()[:12]
            first = msg.split(b"\r\n", 1)[0].decode("latin-1")
            kind = re.sub(r"[^A-Za-z0-9]+", "_", first.split(" sip:")[0].split(" SIP/2.0")[0])
            write("sip", f"sipp_{kind.strip('_').lower()}_{digest}.sip", msg)
            body = body_of(msg)
            if body and b"v=0" in body:
                write("sdp", f"sipp_{digest}.sdp", body)
    for name, text in SDPS.items():
        write("sdp", name, text.encode())


if __name__ == "__main__":
    main()
