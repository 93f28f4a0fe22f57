# Protocol C tests: codec (CBOR, COBS, CRC-32, SHA-256, frames), every handler
# through the dispatcher, the shared vectors in protocol/vectors/; each built
# plain and with ASan/UBSan.
#   make -C firmware proto-test

PROTO_TEST_NAMES := $(sort $(basename $(notdir $(wildcard tests/proto/test_*.c))))
PROTO_TEST_CFLAGS := $(HOST_CFLAGS) -ffp-contract=off -DTR_WITH_ENGINE
PROTO_TEST_SAN_CFLAGS := $(filter-out -O2,$(PROTO_TEST_CFLAGS)) -O1 -fno-omit-frame-pointer \
                         -fsanitize=address,undefined -fno-sanitize-recover=all
# The model blob encoder of the host tools builds test models.
PROTO_TEST_SRCS := $(CORE_SRCS) tools/model_writer/trainer_model.c
PROTO_TEST_BINS := $(patsubst %,$(BUILD)/proto-tests/%,$(PROTO_TEST_NAMES))
PROTO_TEST_SAN_BINS := $(patsubst %,$(BUILD)/proto-tests-san/%,$(PROTO_TEST_NAMES))
PROTO_VECTORS := ../protocol/vectors

$(BUILD)/proto-tests/%: tests/proto/%.c tests/proto/proto_test.h tests/proto/device_fixture.h $(PROTO_TEST_SRCS) $(wildcard core/*/*.h)
	@mkdir -p $(dir $@)
	$(HOST_CC) $(PROTO_TEST_CFLAGS) $< $(PROTO_TEST_SRCS) -o $@ -lm

$(BUILD)/proto-tests-san/%: tests/proto/%.c tests/proto/proto_test.h tests/proto/device_fixture.h $(PROTO_TEST_SRCS) $(wildcard core/*/*.h)
	@mkdir -p $(dir $@)
	$(HOST_CC) $(PROTO_TEST_SAN_CFLAGS) $< $(PROTO_TEST_SRCS) -o $@ -lm

.PHONY: proto-test
proto-test: $(PROTO_TEST_BINS) $(PROTO_TEST_SAN_BINS)
	@set -e; for t in $(PROTO_TEST_BINS) $(PROTO_TEST_SAN_BINS); do \
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		$$t $(PROTO_VECTORS); done

TEST_TARGETS += proto-test

# The protocol core must build warning-free for ARMv6-M and ARMv7E-M, with and
# without the engine (the QEMU and Zephyr ports compile these files).
PROTO_ARM_CC ?= arm-none-eabi-gcc
PROTO_ARM_SRCS := $(sort $(wildcard core/proto/*.c core/cbor/*.c core/crypto/*.c))

$(BUILD)/proto-arm/%.ok: $(PROTO_ARM_SRCS) $(wildcard core/*/*.h)
	@mkdir -p $(dir $@)
	@set -e; for f in $(PROTO_ARM_SRCS); do for e in "" -DTR_WITH_ENGINE; do \
		$(PROTO_ARM_CC) -std=c99 -Os -Wall -Wextra -Werror -Icore -mthumb -mcpu=cortex-$* $$e \
			-c $$f -o $(BUILD)/proto-arm/$*.o; done; done
	@touch $@

.PHONY: proto-arm-check
proto-arm-check: $(BUILD)/proto-arm/m0plus.ok $(BUILD)/proto-arm/m4.ok
TEST_TARGETS += proto-arm-check

# The twin as a process over a real PTY.
$(BUILD)/proto-tests/twin_pty: tests/proto/twin_pty.c tests/proto/proto_test.h tests/qemu/pty_client.h $(PROTO_TEST_SRCS)
	@mkdir -p $(dir $@)
	$(HOST_CC) $(PROTO_TEST_CFLAGS) $< $(PROTO_TEST_SRCS) -o $@ -lm

.PHONY: twin-pty-test
twin-pty-test: $(BUILD)/proto-tests/twin_pty $(TWIN)
	$(BUILD)/proto-tests/twin_pty $(TWIN)
TEST_TARGETS += twin-pty-test
