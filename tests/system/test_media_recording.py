"""voxi.media.<worker_id>.recording.read: chunks of a call's recording from the worker that
wrote it (what the gateway streams GET /v1/calls/{id}/recording from), and the checks on the
path (realpath inside VOXI_MEDIA_RECORDINGS_DIR, that call's file) and the length."""
import json
import os
import re
import subprocess

import pytest

from conftest import TOOLS, Nats
from media_util import Events, Media, media_tmp, pcmu_audio, run_sipp, scenario  # noqa: F401


@pytest.fixture
def own_nats(tmp_root):
    n = Nats(tmp_root)
    n.start()
    yield n
    n.stop()


def read(nats, worker, call_id, path, offset, length, out=None):
    cmd = [os.path.join(TOOLS, "voxi_media_ctl"), nats.url, "recording-read", worker, call_id,
           path, str(offset), str(length)] + ([out] if out else [])
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    return r.returncode, (json.loads(r.stdout) if r.returncode == 0 else None), r.stderr


def test_recording_read_in_chunks(own_nats, tmp_root, media_tmp, pcmu_audio):
    rec_dir = os.path.join(media_tmp, "rec")
    os.makedirs(rec_dir)
    events = Events(own_nats.url)
    media = Media(tmp_root, own_nats.url, VOXI_MEDIA_RECORDINGS_DIR=rec_dir).start()
    try:
        xml = scenario("uac_call", media_tmp, AUDIO=pcmu_audio, PAUSE_MS=1500)
        rc, out = run_sipp(xml, media, media_tmp)
        assert rc == 0, out
        ended = events.wait_event("call.ended")["data"]
        call_id, path, worker = ended["call_id"], ended["recording_path"], ended["worker_id"]
        with open(path, "rb") as f:
            want = f.read()
        assert len(want) > 20000  # 1.5 s of stereo 8 kHz 16-bit

        copy = os.path.join(media_tmp, "copy.wav")
        offset, chunk = 0, 8192
        while True:
            code, rep, err = read(own_nats, worker, call_id, path, offset, chunk, copy)
            assert code == 0, err
            assert rep["total_size"] == len(want)
            offset += rep["len"]
            if rep["eof"]:
                break
            assert rep["len"] == chunk
        with open(copy, "rb") as f:
            assert f.read() == want
        # 0 = the largest chunk; past the end: nothing, eof
        code, rep, _ = read(own_nats, worker, call_id, path, 0, 0)
        assert code == 0 and rep["len"] == min(len(want), 262144)
        code, rep, _ = read(own_nats, worker, call_id, path, len(want) + 10, 100)
        assert code == 0 and rep == {"len": 0, "total_size": len(want), "eof": True}

        # refused: too long, outside the directory (also through ".."), another call's
        # file, a file that does not exist
        code, _, err = read(own_nats, worker, call_id, path, 0, 262145)
        assert code == 5 and "invalid" in err
        outside = os.path.join(media_tmp, f"{call_id}.wav")
        with open(outside, "wb") as f:
            f.write(b"secret")
        code, _, err = read(own_nats, worker, call_id, outside, 0, 100)
        assert code == 5 and "invalid" in err
        code, _, err = read(own_nats, worker, call_id,
                            os.path.join(rec_dir, "..", f"{call_id}.wav"), 0, 100)
        assert code == 5 and "invalid" in err
        os.symlink(outside, os.path.join(rec_dir, "call_other.wav"))
        code, _, err = read(own_nats, worker, "call_other",
                            os.path.join(rec_dir, "call_other.wav"), 0, 100)
        assert code == 5 and "invalid" in err
        code, _, err = read(own_nats, worker, "call_someone_else", path, 0, 100)
        assert code == 5 and "invalid" in err
        code, _, err = read(own_nats, worker, "call_gone", os.path.join(rec_dir, "call_gone.wav"),
                            0, 100)
        assert code == 5 and "not_found" in err
        # another worker id: nobody answers
        code, _, err = read(own_nats, "media-nobody", call_id, path, 0, 100)
        assert code == 3, err
    finally:
        events.close()
        code = media.stop()
    assert code == 0, media.log()[-4000:]


def test_recording_read_without_recordings(own_nats, tmp_root, media_tmp):
    media = Media(tmp_root, own_nats.url).start()
    try:
        m = re.search(r"instance (media-[^ ,]+)", media.log())
        assert m, media.log()
        worker = m.group(1)
        code, _, err = read(own_nats, worker, "call_x", "/etc/passwd", 0, 100)
        assert code == 5 and "not_found" in err
    finally:
        code = media.stop()
    assert code == 0
