#!/usr/bin/env bash
# Installs every Debian package that building, running and testing VoxiHub needs.
# Idempotent: asks dpkg what is present first and runs apt-get only for what is missing.
set -euo pipefail

PACKAGES=(
  # toolchain and tools
  build-essential pkg-config git clang-format cppcheck
  # libraries the services link
  libuv1-dev libh2o-dev libh2o-evloop-dev libnats-dev libpq-dev
  libprotobuf-c-dev protobuf-c-compiler libjansson-dev libcurl4-openssl-dev libssl-dev zlib1g-dev
  libosip2-dev libopus-dev libspeexdsp-dev libsrtp2-dev libspandsp-dev libtiff-dev
  libpocketsphinx-dev libsphinxbase-dev pocketsphinx-en-us flite1-dev
  # servers the local stack and the system tests run
  nats-server postgresql postgresql-client
  # test runners and peers
  libcmocka-dev python3-pytest python3-requests python3-yaml curl
  sip-tester baresip-core espeak-ng sox
  # VAD benchmark (tests/bench/vad): the WebRTC VAD baseline and flite's command line
  libwebrtc-audio-processing-dev flite
  # control-plane API benchmark (tests/bench/bench_api.py)
  wrk
  # the demo agent of `make run` (scripts/demo-agent.sh reads the API's JSON)
  jq
)

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "deps: installing ${missing[*]}"
SUDO=""
[[ $(id -u) -eq 0 ]] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "deps: done"
