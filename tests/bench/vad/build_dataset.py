#!/usr/bin/python3
"""Builds the labelled VAD benchmark set (tests/bench/vad/README.md) into OUTDIR.

Run with Debian's interpreter (standard library only):
    /usr/bin/python3 build_dataset.py OUTDIR [SEED]
(another SEED gives another draw of voices, levels, gaps and noise, e.g. a tuning set apart
from the one the figures are reported on).

Speech: SENTENCES rendered by espeak-ng and flite with several voices, rates and pitches
(each sentence twice, two different voices), converted to 16 kHz with sox; about half the
utterances go through the telephone path (200-3400 Hz band, 8 kHz mu-law and back to
16 kHz). Utterances are levelled to an active speech level of -26 dBFS +-6 dB and joined
with digital silence: half the joins are 0.15-0.4 s pauses between the sentences of one
turn (turns run from one sentence to several, tens of seconds at times: a detector must
not learn a long turn as noise), the others 1-12 s between turns (the caller listening to
the agent: a detector must not drift into speech in a long silence); 1.5 s of leading
silence.

Ground truth: one label per 20 ms frame (320 samples) from the clean signal's energy
envelope: a frame is speech when its energy is within LABEL_RANGE_DB of the utterance's
active level; pauses inside an utterance shorter than LABEL_BRIDGE_FRAMES frames (stop
closures) count as speech, since no detector working on 20 ms frames can or should
drop them.

Noise (same length as the speech stream): white, pink and brown noise from sox's
synthesiser, 60 Hz mains hum with harmonics, and babble: six other talkers summed (the
utterance pool reshuffled six times, back to back). The benchmark mixes clean speech and
noise itself at each SNR, so only one copy of each is stored.

Outputs (raw signed 16-bit little-endian mono, 16 kHz): clean.s16, noise_<kind>.s16,
labels.txt (one '0'/'1' per frame), meta.txt (what was generated). Deterministic: a fixed
seed, sox run with -R (repeatable) and -D (no dither); the same inputs give the same bytes.
"""

import array
import concurrent.futures
import math
import os
import random
import subprocess
import sys
import wave

SEED = 20240605
RATE = 16000
FRAME = 320  # 20 ms
LEAD_SILENCE_S = 1.5
GAP_S = (1.0, 12.0)
TURN_PAUSE_S = (0.15, 0.4)  # between sentences of one turn
TURN_PAUSE_SHARE = 0.5      # share of the joins that are such pauses
LEVEL_DBFS = -26.0
LEVEL_SPREAD_DB = 6.0
LABEL_RANGE_DB = 35.0
LABEL_BRIDGE_FRAMES = 3
TELEPHONE_SHARE = 0.5
BABBLE_TALKERS = 6
NOISE_KINDS = ("white", "pink", "brown", "babble", "hum")

SENTENCES = [
    "Thank you for calling, how can I help you today?",
    "I would like to change the delivery address on my order.",
    "The invoice was sent to the wrong department last week.",
    "Could you repeat the last four digits of the account number?",
    "My flight leaves on Thursday morning at a quarter past seven.",
    "Please hold while I transfer you to a specialist.",
    "We opened the store early because of the holiday rush.",
    "Is there a cheaper plan that still includes international calls?",
    "The technician will arrive between nine and eleven.",
    "She said the package was left at the back door.",
    "Yes, that works for me, let's book it for Friday.",
    "No, I never received a confirmation email about that.",
    "The weather service expects heavy rain along the coast tonight.",
    "Can you spell your last name for me, please?",
    "I've been waiting on hold for almost twenty minutes.",
    "Our records show the payment cleared yesterday afternoon.",
    "A fresh pot of coffee sat steaming on the kitchen counter.",
    "The children played outside until the street lights came on.",
    "Send the signed contract back before the end of the month.",
    "Which branch is closest to the central railway station?",
    "He fixed the squeaky hinge with a drop of oil.",
    "My password stopped working after the last update.",
    "We need six chairs, two tables and a projector for the meeting.",
    "The museum is closed on Mondays and public holidays.",
    "I'd like to cancel my subscription, effective immediately.",
    "The quick brown fox jumps over the lazy dog.",
    "Turn left at the second traffic light and park near the bank.",
    "Her sister moved to a small village in the mountains.",
    "The doctor can see you at half past three tomorrow.",
    "Please say sales or support, or press one or two.",
    "The battery drains within a few hours, even when idle.",
    "They painted the fence a pale shade of green.",
    "Shipping is free on orders above fifty dollars.",
    "I'm calling about the job advertisement in Sunday's paper.",
    "The soup needs more salt and a pinch of pepper.",
    "Our office moved to the fourth floor of the same building.",
    "Thick fog delayed every flight out of the northern airport.",
    "Would you like a receipt by text message or by email?",
    "The printer jams whenever I use the thicker paper.",
    "Several thousand fans gathered outside the stadium.",
    "Let me check whether that size is still in stock.",
    "He whistled a cheerful tune while washing the dishes.",
    "Your reference number is seven, three, nine, two, five.",
    "Is it possible to speak with someone in billing?",
    "The bridge will be closed for repairs all weekend.",
    "Good morning, this is a reminder about your appointment.",
    "She forgot her umbrella on the crowded morning bus.",
    "Thanks, that's all I needed, have a great day.",
]

# (engine, voice, rate or duration stretch, pitch); espeak-ng renders at 22050 Hz, flite's kal
# at 8 kHz, the other flite voices at 16 kHz.
VOICES = [
    ("espeak", "en-us", 160, 50),
    ("espeak", "en-gb+f3", 180, 65),
    ("espeak", "en-us+m3", 210, 40),
    ("espeak", "en-gb-x-rp+f4", 140, 70),
    ("espeak", "en-us+m7", 175, 35),
    ("espeak", "en-029+f2", 150, 55),
    ("flite", "kal", 1.0, None),
    ("flite", "slt", 1.0, None),
    ("flite", "slt", 1.25, None),
    ("flite", "awb", 0.9, None),
    ("flite", "rms", 1.1, None),
    ("flite", "kal16", 0.85, None),
]


def run(cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def synth(job):
    """Renders one utterance to a 16 kHz mono wav; returns its samples."""
    idx, text, voice, telephone, tmp = job
    engine, name, speed, pitch = voice
    raw = os.path.join(tmp, "u%03d_raw.wav" % idx)
    out = os.path.join(tmp, "u%03d.wav" % idx)
    if engine == "espeak":
        run(["espeak-ng", "-v", name, "-s", str(speed), "-p", str(pitch), "-w", raw, text])
    else:
        run(["flite", "-voice", name, "--setf", "duration_stretch=%g" % speed, "-t", text,
             "-o", raw])
    if telephone:
        # The telephone path: band-limit, 8 kHz mu-law (PCMU), back to the worker's 16 kHz.
        narrow = os.path.join(tmp, "u%03d_8k.wav" % idx)
        run(["sox", "-R", "-D", raw, "-r", "8000", "-c", "1", "-e", "mu-law", narrow,
             "sinc", "200-3400"])
        run(["sox", "-R", "-D", narrow, "-r", str(RATE), "-c", "1", "-b", "16", "-e", "signed",
             out])
    else:
        run(["sox", "-R", "-D", raw, "-r", str(RATE), "-c", "1", "-b", "16", "-e", "signed",
             out])
    return read_wav(out)


def read_wav(path):
    with wave.open(path, "rb") as w:
        assert w.getframerate() == RATE and w.getnchannels() == 1 and w.getsampwidth() == 2
        a = array.array("h")
        a.frombytes(w.readframes(w.getnframes()))
    if sys.byteorder != "little":
        a.byteswap()
    return a


def frame_energies(samples):
    n = len(samples) // FRAME
    return [sum(s * s for s in samples[i * FRAME:(i + 1) * FRAME]) / FRAME for i in range(n)]


def active_level(energies):
    """Mean energy of the frames within 30 dB of the loudest (a simple P.56-like level)."""
    peak = max(energies)
    act = [e for e in energies if e > peak * 1e-3]
    return sum(act) / len(act)


def scaled(samples, gain):
    return array.array("h", (max(-32768, min(32767, int(round(s * gain)))) for s in samples))


def write_raw(path, samples):
    a = array.array("h", samples)
    if sys.byteorder != "little":
        a.byteswap()
    with open(path, "wb") as f:
        a.tofile(f)


def sox_noise(path, seconds, skip, spec):
    """sox's -R seeds its generator with a fixed number: repeatable output. Another SEED
    takes the noise from further along the same sequence (skip seconds in)."""
    run(["sox", "-R", "-D", "-n", "-r", str(RATE), "-c", "1", "-b", "16", "-e", "signed",
         "-t", "raw", path, "synth", "%.3f" % (seconds + skip)] + spec + ["trim", str(skip)])


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: build_dataset.py OUTDIR [SEED]")
    outdir = sys.argv[1]
    seed = int(sys.argv[2]) if len(sys.argv) == 3 else SEED
    tmp = os.path.join(outdir, "tmp")
    os.makedirs(tmp, exist_ok=True)
    rng = random.Random(seed)

    jobs = []
    for si, text in enumerate(SENTENCES):
        for vi in rng.sample(range(len(VOICES)), 2):
            jobs.append((len(jobs), text, VOICES[vi], rng.random() < TELEPHONE_SHARE, tmp))
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        utts = list(pool.map(synth, jobs))

    # Level each utterance and trim it to whole frames; the stream is frame-aligned so that
    # a label covers exactly one detector frame.
    levelled = []
    for samples in utts:
        samples = samples[: len(samples) // FRAME * FRAME]
        target = LEVEL_DBFS + rng.uniform(-LEVEL_SPREAD_DB, LEVEL_SPREAD_DB)
        gain = math.sqrt(10 ** (target / 10) * 32768.0 ** 2 / active_level(frame_energies(samples)))
        levelled.append(scaled(samples, gain))
    order = list(range(len(levelled)))
    rng.shuffle(order)

    clean = array.array("h", [0]) * int(LEAD_SILENCE_S * RATE)
    labels = [0] * (len(clean) // FRAME)
    turn_s = longest_turn_s = 0.0
    for i in order:
        u = levelled[i]
        en = frame_energies(u)
        floor = active_level(en) * 10 ** (-LABEL_RANGE_DB / 10)
        lab = [1 if e >= floor else 0 for e in en]
        # bridge short pauses between speech frames
        last = None
        for k, v in enumerate(lab):
            if v:
                if last is not None and 0 < k - last - 1 <= LABEL_BRIDGE_FRAMES:
                    for j in range(last + 1, k):
                        lab[j] = 1
                last = k
        clean.extend(u)
        labels.extend(lab)
        in_turn = rng.random() < TURN_PAUSE_SHARE
        gap = int(rng.uniform(*(TURN_PAUSE_S if in_turn else GAP_S)) * RATE) // FRAME * FRAME
        turn_s += len(u) / RATE
        longest_turn_s = max(longest_turn_s, turn_s)
        turn_s = turn_s + gap / RATE if in_turn else 0.0
        clean.extend(array.array("h", [0]) * gap)
        labels.extend([0] * (gap // FRAME))
    assert len(clean) == len(labels) * FRAME
    seconds = len(clean) / RATE
    write_raw(os.path.join(outdir, "clean.s16"), clean)
    with open(os.path.join(outdir, "labels.txt"), "w") as f:
        f.write("".join(str(v) for v in labels) + "\n")

    skip = seed % 13
    sox_noise(os.path.join(outdir, "noise_white.s16"), seconds, skip, ["whitenoise"])
    sox_noise(os.path.join(outdir, "noise_pink.s16"), seconds, skip, ["pinknoise"])
    sox_noise(os.path.join(outdir, "noise_brown.s16"), seconds, skip, ["brownnoise"])
    # mains hum: 60 Hz sawtooth (every harmonic), band-limited like a ground loop buzz
    sox_noise(os.path.join(outdir, "noise_hum.s16"), seconds, skip,
              ["sawtooth", "60", "lowpass", "1200"])
    raw_in = ["-t", "raw", "-r", str(RATE), "-e", "signed", "-b", "16", "-c", "1"]
    talkers = []
    for t in range(BABBLE_TALKERS):
        order_t = list(range(len(levelled)))
        random.Random(seed + 1 + t).shuffle(order_t)
        stream = array.array("h")
        while len(stream) < len(clean):
            for i in order_t:
                stream.extend(levelled[i])
        path = os.path.join(tmp, "talker%d.s16" % t)
        write_raw(path, stream[: len(clean)])
        talkers += raw_in + [path]
    # sox -m scales each input by 1/n: the sum cannot clip
    run(["sox", "-R", "-D", "-m"] + talkers + raw_in + [os.path.join(outdir, "noise_babble.s16")])

    speech = sum(labels)
    voices_used = sorted({"%s:%s@%s" % (j[2][0], j[2][1], j[2][2]) for j in jobs})
    with open(os.path.join(outdir, "meta.txt"), "w") as f:
        f.write("seed %d\n" % seed)
        f.write("utterances %d (sentences %d, telephone path %d)\n" %
                (len(jobs), len(SENTENCES), sum(1 for j in jobs if j[3])))
        f.write("voices %s\n" % " ".join(voices_used))
        f.write("seconds %.1f frames %d speech_frames %d (%.1f%%) longest_turn %.1f s\n" %
                (seconds, len(labels), speech, 100.0 * speech / len(labels), longest_turn_s))
        f.write("noise %s\n" % " ".join(NOISE_KINDS))
    for name in os.listdir(tmp):
        os.unlink(os.path.join(tmp, name))
    os.rmdir(tmp)
    print("vad dataset: %.1f s, %d frames, %.1f%% speech, %d utterances -> %s" %
          (seconds, len(labels), 100.0 * speech / len(labels), len(jobs), outdir))


if __name__ == "__main__":
    main()
