# libFuzzer harness over the frame decoder, CBOR reader and dispatcher.
#   make -C firmware fuzz-smoke             (~30 s, part of make test)
#   make -C firmware fuzz FUZZ_SECONDS=600  (longer run)
# Seeds: written by fuzz/make_seeds.py into build/fuzz/corpus, plus every wire frame in
# protocol/vectors/*.vec. Crashes land in build/fuzz/ as crash-*.

FUZZ_CC ?= clang
FUZZ_SECONDS ?= 600
FUZZ_SMOKE_SECONDS ?= 30
FUZZ_BIN := $(BUILD)/fuzz/fuzz_device
FUZZ_CORPUS := $(BUILD)/fuzz/corpus
FUZZ_SRCS := $(CORE_SRCS) tools/model_writer/trainer_model.c
FUZZ_CFLAGS := -std=c99 -g -O1 -Icore -DTR_WITH_ENGINE -ffp-contract=off \
               -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all

$(FUZZ_BIN): fuzz/fuzz_device.c tests/proto/device_fixture.h $(FUZZ_SRCS) $(wildcard core/*/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) fuzz/fuzz_device.c $(FUZZ_SRCS) -o $@ -lm

.PHONY: fuzz fuzz-smoke fuzz-corpus
fuzz-corpus:
	@mkdir -p $(FUZZ_CORPUS)
	@python3 fuzz/make_seeds.py $(FUZZ_CORPUS)
	@for v in $(wildcard ../protocol/vectors/*.vec); do \
		i=0; sed -n 's/^wire:[[:space:]]*//p' $$v | while read -r hex; do \
			i=$$((i+1)); { printf '\000'; printf '%s' "$$hex" | xxd -r -p; } \
				> $(FUZZ_CORPUS)/vec-$$(basename $$v .vec)-$$i.bin; done; done

fuzz-smoke: $(FUZZ_BIN) fuzz-corpus
	@cd $(BUILD)/fuzz && if nice ./fuzz_device -max_total_time=$(FUZZ_SMOKE_SECONDS) \
		-print_final_stats=1 corpus > smoke.log 2>&1; then grep -E '^(Done|stat::number_of_executed_units)' smoke.log; \
		else tail -40 smoke.log; exit 1; fi

fuzz: $(FUZZ_BIN) fuzz-corpus
	cd $(BUILD)/fuzz && nice ./fuzz_device -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 corpus

TEST_TARGETS += fuzz-smoke
