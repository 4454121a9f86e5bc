# VoxiHub build. `make run` and `make test` are the two commands; see README.md.
#
#   make            build everything into build/ (binaries in build/bin/)
#   make SAN=1      the same with AddressSanitizer + UndefinedBehaviorSanitizer in build-asan/
#   make run|stop|status   the local stack under .run/ (make demo: call its demo agent)
#   make test       deps, both builds, unit tests, system tests
#   make fmt|lint|bench|clean

SAN ?= 0
ifeq ($(SAN),1)
BUILD ?= build-asan
else
BUILD ?= build
endif

CC ?= gcc
PROTOC_C ?= protoc-c
SERVICES := gateway auth registry webhooks media providers
DEP_PKGS := libuv libh2o libnats libpq libprotobuf-c jansson libcurl openssl
MEDIA_PKGS := libosip2 opus speexdsp libsrtp2 spandsp

# Dependency headers are system headers: their warnings are not ours to fix.
PKG_CFLAGS = $(shell pkg-config --cflags $(DEP_PKGS) $(MEDIA_PKGS) | sed 's/-I/-isystem /g')
PKG_LIBS = $(shell pkg-config --libs $(DEP_PKGS)) -luv -lpthread -lm

OPT := -O2
SANFLAGS := $(SANFLAGS_EXTRA)
ifeq ($(SAN),1)
OPT := -O1
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
endif

CFLAGS_BASE = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wvla -g $(OPT) $(SANFLAGS) \
              -MMD -MP -Ilibcommon -I$(BUILD)/gen $(PKG_CFLAGS)
LDFLAGS_BASE = $(SANFLAGS)

PROTOS := $(wildcard proto/voxi/v1/*.proto)
PROTO_C := $(patsubst proto/%.proto,$(BUILD)/gen/%.pb-c.c,$(PROTOS))
PROTO_H := $(PROTO_C:.c=.h)
PROTO_O := $(patsubst $(BUILD)/gen/%.c,$(BUILD)/obj/gen/%.o,$(PROTO_C))

LC_SRC := $(wildcard libcommon/*.c)
LC_O := $(patsubst %.c,$(BUILD)/obj/%.o,$(LC_SRC))
LIBCOMMON := $(BUILD)/lib/libcommon.a

BINS := $(foreach s,$(SERVICES),$(BUILD)/bin/voxi-$(s))

UNIT_SRC := $(wildcard tests/unit/libcommon/test_*.c) $(wildcard tests/unit/services/*/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(UNIT_SRC))
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_REPLAY := $(patsubst tests/fuzz/%.c,$(BUILD)/tests/fuzz/%,$(FUZZ_SRC))
TOOL_SRC := $(wildcard tests/tools/*.c)
TOOL_BINS := $(patsubst tests/tools/%.c,$(BUILD)/tests/tools/%,$(TOOL_SRC))

.PHONY: all build deps run stop status demo test unit system asan fmt lint bench clean config-reference \
        fuzz fuzz-replay
.DEFAULT_GOAL := all

BENCH_SRC := $(wildcard tests/bench/bench_*.c)
BENCH_BINS := $(patsubst tests/bench/%.c,$(BUILD)/tests/bench/%,$(BENCH_SRC))

all: $(BINS) $(UNIT_BINS) $(TOOL_BINS) $(FUZZ_REPLAY) $(BENCH_BINS)

build: all

deps:
	@bash scripts/deps.sh

# ---- generated protobuf code (never committed) ----
$(BUILD)/gen/%.pb-c.c $(BUILD)/gen/%.pb-c.h: proto/%.proto
	@mkdir -p $(BUILD)/gen
	$(PROTOC_C) --proto_path=proto --c_out=$(BUILD)/gen $<

$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c | $(PROTO_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -Wno-unused-parameter -c $< -o $@

# ---- libcommon ----
$(BUILD)/obj/%.o: %.c | $(PROTO_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -c $< -o $@

$(LIBCOMMON): $(LC_O) $(PROTO_O)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# ---- services: every .c in services/<name>/ goes into voxi-<name> ----
svc_objs = $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard services/$(1)/*.c))
# flite has no .pc (PITFALLS)
SVC_LIBS_media = $(shell pkg-config --libs $(MEDIA_PKGS)) -lflite_cmu_us_slt -lflite_cmu_us_kal \
                 -lflite_usenglish -lflite_cmulex -lflite
# providers: pocketsphinx (its headers only for its own objects: sphinxbase ships err.h), flite
PV_PKGS := pocketsphinx sphinxbase speexdsp
SVC_LIBS_providers = $(shell pkg-config --libs $(PV_PKGS)) -lflite_cmu_us_slt -lflite_cmu_us_kal \
                     -lflite_usenglish -lflite_cmulex -lflite
$(BUILD)/obj/services/providers/%.o: CFLAGS_BASE += $(shell pkg-config --cflags pocketsphinx sphinxbase | sed 's/-I/-isystem /g')
# auth: zlib for the CRC-32 in API key checksums
SVC_LIBS_auth := -lz

define service_rule
$(BUILD)/bin/voxi-$(1): $(call svc_objs,$(1)) $(LIBCOMMON)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS_BASE) -o $$@ $(call svc_objs,$(1)) $(LIBCOMMON) $$(SVC_LIBS_$(1)) $$(PKG_LIBS)
endef
$(foreach s,$(SERVICES),$(eval $(call service_rule,$(s))))
# the gateway embeds its OpenAPI document (.incbin in openapi.c)
$(BUILD)/obj/services/gateway/openapi.o: services/gateway/openapi.json

# ---- unit tests (cmocka); a service's tests link its objects except main.o ----
$(BUILD)/tests/unit/libcommon/%: $(BUILD)/obj/tests/unit/libcommon/%.o $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_BASE) -o $@ $< $(LIBCOMMON) -lcmocka $(PKG_LIBS)

define service_test_rule
$(BUILD)/tests/unit/services/$(1)/%: $(BUILD)/obj/tests/unit/services/$(1)/%.o $(filter-out %/main.o,$(call svc_objs,$(1))) $(LIBCOMMON)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS_BASE) -o $$@ $$< $(filter-out %/main.o,$(call svc_objs,$(1))) $(LIBCOMMON) -lcmocka $$(SVC_LIBS_$(1)) $$(PKG_LIBS)
endef
$(foreach s,$(SERVICES),$(eval $(call service_test_rule,$(s))))

$(BUILD)/tests/tools/%: $(BUILD)/obj/tests/tools/%.o $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_BASE) -o $@ $< $(LIBCOMMON) $(PKG_LIBS)

# the media load generator (tests/bench/bench_media.py) encodes real Opus payloads
$(BUILD)/tests/tools/voxi_rtp_load: $(BUILD)/obj/tests/tools/voxi_rtp_load.o $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_BASE) -o $@ $< $(LIBCOMMON) $(PKG_LIBS) -lopus

# ---- fuzz targets: a corpus replayer in every build; `make fuzz` builds libFuzzer binaries ----
$(BUILD)/tests/fuzz/%: $(BUILD)/obj/tests/fuzz/%.o $(BUILD)/obj/tests/fuzz/replay_main.o $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_BASE) -o $@ $< $(BUILD)/obj/tests/fuzz/replay_main.o $(LIBCOMMON) $(PKG_LIBS)

# Targets of the media worker's parsers (tests/fuzz/fuzz_<name>.c) also link its objects
# except main.o, and its libraries.
FUZZ_MEDIA := rtp rtcp dtmf4733 sdes sip sdp
MEDIA_OBJS = $(filter-out %/main.o,$(call svc_objs,media))
$(patsubst %,$(BUILD)/tests/fuzz/fuzz_%,$(FUZZ_MEDIA)): $(BUILD)/tests/fuzz/%: \
    $(BUILD)/obj/tests/fuzz/%.o $(BUILD)/obj/tests/fuzz/replay_main.o $(MEDIA_OBJS) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_BASE) -o $@ $< $(BUILD)/obj/tests/fuzz/replay_main.o $(MEDIA_OBJS) \
	    $(LIBCOMMON) $(SVC_LIBS_media) $(PKG_LIBS)

FUZZ_SECONDS ?= 60
FUZZ_MEDIA_OBJS = $(patsubst %.c,build-fuzz/obj/%.o,$(filter-out %/main.c,$(wildcard services/media/*.c)))
fuzz:
	@$(MAKE) --no-print-directory BUILD=build-fuzz CC=clang \
	    SANFLAGS_EXTRA="-fsanitize=fuzzer-no-link,address,undefined" build-fuzz/lib/libcommon.a \
	    $(FUZZ_MEDIA_OBJS)
	@mkdir -p build-fuzz/fuzz
	@# New inputs go to build-fuzz/corpus/<target> (libFuzzer writes into the first directory);
	@# the saved corpus in tests/fuzz/corpus/ is only read.
	@for f in $(FUZZ_SRC); do n=$$(basename $$f .c); extra=""; \
	  case " $(FUZZ_MEDIA) " in *" $${n#fuzz_} "*) extra="$(FUZZ_MEDIA_OBJS) $(SVC_LIBS_media)";; esac; \
	  mkdir -p build-fuzz/corpus/$${n#fuzz_}; \
	  clang -g -O1 -fsanitize=fuzzer,address,undefined -Ilibcommon -Ibuild-fuzz/gen $$f \
	    $$extra build-fuzz/lib/libcommon.a $(PKG_LIBS) -o build-fuzz/fuzz/$$n && \
	  build-fuzz/fuzz/$$n -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=build-fuzz/ \
	    build-fuzz/corpus/$${n#fuzz_} tests/fuzz/corpus/$${n#fuzz_} || exit 1; done

# ---- benchmarks (tests/bench/bench_*.c) link the media objects except main.o ----
$(BENCH_BINS): $(BUILD)/tests/bench/%: $(BUILD)/obj/tests/bench/%.o $(MEDIA_OBJS) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_BASE) -o $@ $< $(MEDIA_OBJS) $(LIBCOMMON) $(SVC_LIBS_media) $(PKG_LIBS)

.SECONDARY:

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# ---- the local stack ----
run: deps
	@$(MAKE) --no-print-directory all
	@bash scripts/run.sh

stop:
	@bash scripts/stop.sh

status:
	@bash scripts/status.sh

# two scripted calls to the demo agent of `make run` (scripts/demo.sh)
demo:
	@bash scripts/demo.sh

# ---- tests ----
unit: all
	@bash scripts/testenv.sh bash scripts/unit.sh $(BUILD)

system: all
	@bash scripts/system.sh $(BUILD)

fuzz-replay: all
	@bash scripts/fuzz-replay.sh $(BUILD)

asan:
	@$(MAKE) --no-print-directory SAN=1 all

test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory SAN=1 all
	@bash scripts/testenv.sh bash scripts/unit.sh build
	@bash scripts/testenv.sh bash scripts/unit.sh build-asan
	@bash scripts/fuzz-replay.sh build-asan
	@bash scripts/system.sh build-asan
	@bash scripts/system.sh build

bench: all
	@bash scripts/bench.sh $(BUILD)

# ---- VAD benchmark (tests/bench/vad/README.md): md_vad against Debian's WebRTC VAD ----
# The C++ shim around libwebrtc-audio-processing is linked into the benchmark only. The
# labelled set is generated under $(BUILD)/bench/vad/data (rebuilt when the builder changes);
# figures go to $(BUILD)/bench/vad.txt and .csv.
WEBRTC_APM_CFLAGS = $(shell pkg-config --cflags webrtc-audio-processing | sed 's/-I/-isystem /g')
WEBRTC_APM_LIBS = $(shell pkg-config --libs webrtc-audio-processing)
VAD_BENCH_OBJS := $(BUILD)/obj/tests/bench/vad/bench_vad.o $(BUILD)/obj/tests/bench/vad/webrtc_vad_shim.o \
                  $(BUILD)/obj/services/media/md_vad.o

$(BUILD)/obj/tests/bench/vad/webrtc_vad_shim.o: tests/bench/vad/webrtc_vad_shim.cc tests/bench/vad/webrtc_vad_shim.h
	@mkdir -p $(dir $@)
	$(CXX) -std=c++11 -Wall -Wextra -Werror -g $(OPT) $(SANFLAGS) $(WEBRTC_APM_CFLAGS) -c $< -o $@

$(BUILD)/tests/bench/vad/bench_vad: $(VAD_BENCH_OBJS) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CXX) $(LDFLAGS_BASE) -o $@ $(VAD_BENCH_OBJS) $(LIBCOMMON) $(WEBRTC_APM_LIBS) -lpthread -lm

$(BUILD)/bench/vad/data/meta.txt: tests/bench/vad/build_dataset.py
	/usr/bin/python3 tests/bench/vad/build_dataset.py $(BUILD)/bench/vad/data

.PHONY: bench-vad
bench-vad: $(BUILD)/tests/bench/vad/bench_vad $(BUILD)/bench/vad/data/meta.txt
	$(BUILD)/tests/bench/vad/bench_vad $(BUILD)/bench/vad/data $(BUILD)/bench/vad

# ---- style ----
FMT_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)

fmt:
	clang-format -i $(FMT_FILES)

lint:
	clang-format --dry-run --Werror $(FMT_FILES)
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability --inline-suppr \
	    --suppress=missingIncludeSystem -Ilibcommon libcommon services

config-reference: all
	@bash scripts/config-reference.sh $(BUILD)

clean:
	rm -rf build build-asan build-fuzz
