# baimo build: GNU Make + pkg-config.
#   make            build/libbaimo.a, build/libbaimo.so, build/baimo
#   make test       install what is missing, build, run every test (SAN=1: ASan+UBSan build)
#   make run        install what is missing, build, start the main job on the default model
#   make bench      build the benchmark programs under bench/
SHELL := /bin/bash
CC ?= cc
SAN ?= 0
PKGS := libpcre2-8 libutf8proc jansson libmicrohttpd sqlite3 libcurl openblas

ifeq ($(SAN),1)
BUILD := build-san
OPT := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
BUILD := build
OPT := -O2 -g
endif

# Open MPI is optional: with it, src/train/mpi_dp.c gives `mpirun baimo train` data parallelism.
ifeq ($(shell pkg-config --exists ompi-c 2>/dev/null && echo y),y)
PKGS += ompi-c
MPI_DEF := -DBM_HAVE_MPI
endif

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS_ALL = -std=c11 $(OPT) -Wall -Wextra -Wno-unused-parameter -Wshadow -fPIC \
  -D_GNU_SOURCE -pthread -Iinclude -Isrc -I$(BUILD)/gen $(PKG_CFLAGS) $(MPI_DEF) $(CFLAGS)
LDLIBS_ALL = $(PKG_LIBS) -lm -pthread $(LDLIBS)

# Library sources: every src/<layer>/ except the CLI. ISA-specific files carry their flags by
# name (x86/*_avx2.c, *_avx512.c, ..., arm/*_neon.c, *_dotprod.c) so the rest of the library
# stays baseline for the target. src/tensor/x86/ is built only for x86-64 targets and
# src/tensor/arm/ only for aarch64 ones (as $(CC) -dumpmachine names them); other targets get
# the scalar kernels only.
BM_TARGET := $(shell $(CC) -dumpmachine 2>/dev/null)
ISA_DIRS_OUT := $(if $(filter x86_64-%,$(BM_TARGET)),,src/tensor/x86/%) \
  $(if $(filter aarch64-%,$(BM_TARGET)),,src/tensor/arm/%)
LIB_SRC := $(filter-out src/cli/% $(ISA_DIRS_OUT),$(wildcard src/*/*.c src/*/*/*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_SRC := $(wildcard src/cli/*.c)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
CMD_SRC := $(wildcard src/cli/cmd_*.c)
WEB_SRC := $(wildcard web/*)
TEST_SRC := $(wildcard tests/unit/test_*.c)
TEST_BIN := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)
BENCH_SRC := $(wildcard bench/bench_*.c)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
REF_SRC := $(wildcard tests/ref/*.c)
REF_BIN := $(REF_SRC:tests/ref/%.c=$(BUILD)/ref/%)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)

ISA_avx2 := -mavx2 -mfma -mf16c
ISA_avx512 := -mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512vl -mavx512dq
ISA_vnni := -mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni
ISA_avxvnni := -mavx2 -mfma -mf16c -mavxvnni
ISA_bf16 := -mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512bf16
ISA_amx := -mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mamx-tile -mamx-int8 -mamx-bf16
# AArch64: NEON is baseline (armv8-a); sdot/udot files are used only after getauxval says so.
ISA_neon :=
ISA_dotprod := -march=armv8.2-a+dotprod
isa_flags = $(foreach k,avx2 avx512 vnni avxvnni bf16 amx neon dotprod,$(if $(filter %_$(k).c,$(1)),$(ISA_$(k))))

.PHONY: all lib cli test run bench fuzz deps deps-test clean default-model
all: $(BUILD)/libbaimo.a $(BUILD)/libbaimo.so $(BUILD)/baimo

$(BUILD)/obj/%.o: %.c | $(BUILD)/gen/cmds.h $(BUILD)/gen/web_assets.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(call isa_flags,$<) -MMD -MP -c $< -o $@

$(BUILD)/libbaimo.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libbaimo.so: $(LIB_OBJ)
	$(CC) -shared $(OPT) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/baimo: $(CLI_OBJ) $(BUILD)/libbaimo.a
	$(CC) $(OPT) -o $@ $(CLI_OBJ) $(BUILD)/libbaimo.a $(LDLIBS_ALL)

# The subcommand table is generated from the file names src/cli/cmd_<name>.c, so adding a
# subcommand is adding a file.
$(BUILD)/gen/cmds.h: $(CMD_SRC) Makefile
	@mkdir -p $(dir $@)
	@{ for f in $(sort $(CMD_SRC)); do n=$$(basename $$f .c); n=$${n#cmd_}; \
	   echo "CMD($$n, \"$$(echo $$n | tr _ -)\")"; done; } > $@.tmp && mv $@.tmp $@

# Web assets embedded into the binary (served by src/serve/).
$(BUILD)/gen/web_assets.h: $(WEB_SRC) scripts/embed.sh
	@mkdir -p $(dir $@)
	@bash scripts/embed.sh $@ $(WEB_SRC)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libbaimo.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(BUILD)/libbaimo.a $(LDLIBS_ALL) $$(pkg-config --libs criterion)

# C helpers that reference tests (tests/ref/*.py) drive baimo through.
$(BUILD)/ref/%: tests/ref/%.c $(BUILD)/libbaimo.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(BUILD)/libbaimo.a $(LDLIBS_ALL)

# -MMD: bench_forward includes src/cli/cmd_bench.c and must rebuild when it changes.
$(BUILD)/bench/%: bench/%.c $(BUILD)/libbaimo.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -o $@ $< $(BUILD)/libbaimo.a $(LDLIBS_ALL)

# libFuzzer targets: clang, the library sources compiled in with ASan+UBSan.
FUZZ_CFLAGS = -std=c11 -O1 -g -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iinclude -Isrc \
  -I$(BUILD)/gen $(PKG_CFLAGS)
$(BUILD)/fuzz/%: tests/fuzz/%.c $(LIB_SRC) | $(BUILD)/gen/cmds.h $(BUILD)/gen/web_assets.h
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $< $(filter-out %_avx2.c %_avx512.c %_vnni.c %_avxvnni.c %_bf16.c %_amx.c %_neon.c %_dotprod.c,$(LIB_SRC)) -DBM_NO_SIMD $(LDLIBS_ALL)

bench: $(BENCH_BIN)
fuzz: $(FUZZ_BIN)
# LD_PRELOAD allocation counter for tests/ref/test_hotloop.sh.
$(BUILD)/shim/%.so: tests/shim/%.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 -Wall -Wextra -D_GNU_SOURCE -shared -fPIC -o $@ $<

tests-bin: $(TEST_BIN) $(BENCH_BIN) $(REF_BIN) $(BUILD)/shim/alloc_count.so

deps:
	@bash scripts/deps.sh build
deps-test:
	@bash scripts/deps.sh test

test: deps-test
	@$(MAKE) --no-print-directory all tests-bin fuzz
	@BUILD=$(BUILD) bash tests/run.sh

DEFAULT_MODEL ?= models/default.gguf
run: deps
	@$(MAKE) --no-print-directory all
	@bash scripts/run.sh $(BUILD) $(DEFAULT_MODEL)

CORPUS ?= build/corpus
DM_ARCH ?= --arch llama --dim 288 --layers 6 --heads 6 --kv-heads 2 --ff 768 --ctx 256 --tied
# The default model (models/README.md): corpus from Debian packages -> tokenizer -> shards ->
# pretraining -> SFT on derived chat pairs -> Q8_0. About 50 minutes on 2 cores.
default-model: all
	bash scripts/corpus.sh $(CORPUS)
	$(BUILD)/baimo train-tokenizer -f $(CORPUS)/pretrain.txt --vocab 8192 -o $(CORPUS)/tokenizer.json
	$(BUILD)/baimo data prepare -f $(CORPUS)/pretrain.txt --tokenizer $(CORPUS)/tokenizer.json \
	  -o $(CORPUS)/pretrain --val-frac 0.05 --doc-sep '<|endoftext|>'
	$(BUILD)/baimo data prepare --chat $(CORPUS)/sft.jsonl --tokenizer $(CORPUS)/tokenizer.json \
	  -o $(CORPUS)/sft
	$(BUILD)/baimo train $(DM_ARCH) -d $(CORPUS)/pretrain --tokenizer $(CORPUS)/tokenizer.json \
	  --batch 16 --steps 700 --lr 1e-3 --warmup 40 --min-lr 1e-4 --eval-every 100 \
	  --save-every 100 --seed 1 -o $(CORPUS)/base.gguf
	$(BUILD)/baimo train --init $(CORPUS)/base.gguf -d $(CORPUS)/sft --batch 16 --steps 240 \
	  --lr 5e-4 --warmup 20 --min-lr 5e-5 --eval-every 60 --save-every 60 --seed 2 \
	  -o $(CORPUS)/sft.gguf
	$(BUILD)/baimo quantize $(CORPUS)/sft.gguf models/default.gguf q8_0

clean:
	rm -rf build build-san

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(BENCH_BIN:=.d)
