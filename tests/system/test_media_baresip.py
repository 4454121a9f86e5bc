"""voxi-media with baresip as the caller: an SRTP (SDES) call with Opus, and a plain PCMU
call, each checked end to end through the worker's recording (the caller's speech arrives,
our welcome prompt goes out) and the call.ended statistics (SRTP, RTCP both ways)."""
import audioop
import os
import struct
import subprocess
import wave

import pytest

from conftest import free_port
from media_util import Events, Media, media_tmp  # noqa: F401


@pytest.fixture
def events(nats):
    ev = Events(nats.url)
    yield ev
    ev.close()


@pytest.fixture(scope="module")
def speech(tmp_root):
    """A few seconds of speech at 8 and 48 kHz (espeak-ng + sox), as baresip's source."""
    raw = os.path.join(tmp_root, "bs-speech.wav")
    subprocess.run(["espeak-ng", "-w", raw, "Testing the voxi hub media worker with baresip. "
                    "One, two, three, four, five, six, seven."], check=True, capture_output=True)
    out = {}
    for rate in (8000, 48000):
        path = os.path.join(tmp_root, f"bs-speech-{rate}.wav")
        subprocess.run(["sox", raw, "-r", str(rate), "-c", "1", "-b", "16", path], check=True,
                       capture_output=True)
        out[rate] = path
    return out


def run_baresip(tmp, target, source, rate, account_params, seconds=12):
    """Calls target from a headless baresip that plays source and hangs up at its end."""
    cfg = os.path.join(tmp, f"baresip-{rate}")
    os.makedirs(cfg, exist_ok=True)
    with open(os.path.join(cfg, "config"), "w") as f:
        f.write(f"""poll_method epoll
sip_listen 127.0.0.1:{free_port()}
call_local_timeout 120
audio_path /usr/share/baresip
audio_player aufile,{os.path.join(cfg, 'heard.wav')}
audio_source aufile,{source}
audio_alert aufile,/dev/null
ausrc_srate {rate}
auplay_srate {rate}
ausrc_channels 1
auplay_channels 1
rtcp_mux no
net_interface 127.0.0.1
module_path /usr/lib/baresip/modules
module stdio.so
module opus.so
module g711.so
module aufile.so
module srtp.so
module_app account.so
module_app menu.so
""")
    with open(os.path.join(cfg, "accounts"), "w") as f:
        f.write(f"<sip:bs@127.0.0.1>;regint=0;{account_params}\n")
    out = subprocess.run(["baresip", "-f", cfg, "-e", f"/dial {target}", "-t", str(seconds)],
                         capture_output=True, text=True, timeout=seconds + 20, cwd=tmp)
    return out.stdout + out.stderr


def channels(path):
    with wave.open(path, "rb") as w:
        rate = w.getframerate()
        data = w.readframes(w.getnframes())
    return rate, audioop.tomono(data, 2, 1, 0), audioop.tomono(data, 2, 0, 1)


def envelope(pcm, rate, frame_ms=20):
    n = rate * frame_ms // 1000 * 2
    return [audioop.rms(pcm[i:i + n], 2) for i in range(0, len(pcm) - n + 1, n)]


def best_correlation(a, b, max_lag):
    """Largest normalised correlation of envelope b against a shifted by 0..max_lag."""
    def corr(x, y):
        n = min(len(x), len(y))
        x, y = x[:n], y[:n]
        mx, my = sum(x) / n, sum(y) / n
        sxy = sum((p - mx) * (q - my) for p, q in zip(x, y))
        sxx = sum((p - mx) ** 2 for p in x)
        syy = sum((q - my) ** 2 for q in y)
        return sxy / (sxx * syy) ** 0.5 if sxx and syy else 0.0
    return max(corr(a[lag:], b) for lag in range(0, max_lag))


@pytest.fixture
def media(tmp_root, nats, media_tmp):
    m = Media(tmp_root, nats.url, VOXI_MEDIA_RECORDINGS_DIR=media_tmp).start()
    yield m
    assert m.stop() == 0, m.log()[-4000:]


def test_srtp_opus_call(media, events, media_tmp, speech):
    log = run_baresip(media_tmp, f"sip:demo@127.0.0.1:{media.sip_port}", speech[48000], 48000,
                      "mediaenc=srtp-mand;audio_codecs=opus/48000/2")
    assert "SRTP is Enabled" in log, log
    ended = events.wait_event("call.ended")
    d = ended["data"]
    assert d["codec"] == "opus"
    assert d["rtp"]["srtp"] is True
    # baresip sends one short RTCP packet in the clear at the start, which SRTCP rightly
    # refuses; nothing else may be dropped
    assert d["rtp"]["dropped"] <= 1, d["rtp"]
    assert d["rtp"]["packets_in"] > 150 and d["rtp"]["packets_out"] > 150
    assert d["rtp"]["rtcp_out"] >= 1
    # the caller's speech is in the recording (16 kHz for opus), shaped like what was sent
    rate, left, right = channels(d["recording_path"])
    assert rate == 16000
    with wave.open(speech[48000], "rb") as w:
        src = w.readframes(w.getnframes())
    src16, _ = audioop.ratecv(src, 2, 1, 48000, 16000, None)
    c = best_correlation(envelope(left, 16000), envelope(src16, 16000), 50)
    assert c > 0.8, c
    # and our welcome prompt went the other way
    assert audioop.rms(right[:16000 * 2 * 3], 2) > 300


def test_pcmu_call_within_codec_tolerance(media, events, media_tmp, speech):
    log = run_baresip(media_tmp, f"sip:demo@127.0.0.1:{media.sip_port}", speech[8000], 8000,
                      "audio_codecs=PCMU/8000")
    assert "Call established" in log, log
    d = events.wait_event("call.ended")["data"]
    assert d["codec"] == "PCMU" and d["rtp"]["srtp"] is False
    rate, left, _ = channels(d["recording_path"])
    assert rate == 8000
    with wave.open(speech[8000], "rb") as w:
        src = w.readframes(w.getnframes())
    expected = audioop.ulaw2lin(audioop.lin2ulaw(src, 2), 2)
    rec = struct.unpack(f"<{len(left) // 2}h", left)
    exp = struct.unpack(f"<{len(expected) // 2}h", expected)
    # align on a second of speech, then compare sample by sample: baresip's G.711 encoder
    # rounds a few values differently from the reference table, nothing else may differ
    window = exp[8000:8800]
    offset = min(range(0, len(rec) - 800),
                 key=lambda o: sum(abs(a - b) for a, b in zip(rec[o:o + 800:8], window[::8])))
    offset -= 8000
    pairs = [(rec[i + offset], exp[i]) for i in range(2000, len(exp) - 2000)
             if 0 <= i + offset < len(rec)]
    exact = sum(1 for a, b in pairs if a == b) / len(pairs)
    mean = sum(abs(a - b) for a, b in pairs) / len(pairs)
    assert exact > 0.9 and mean < 8, (exact, mean)
