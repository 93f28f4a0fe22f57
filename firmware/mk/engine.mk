# Training engine: the host tool tinyrig-train, the engine unit tests (plain and
# ASan/UBSan) and a warning-free compile check of the engine for Cortex-M0+/M4.
#   make -C firmware build/host/tinyrig-train
#   make -C firmware engine-test        (every engine test)

ENGINE_DIRS := core/common core/engine core/kernels core/quant core/train core/model core/arena \
               core/cbor core/crypto
ENGINE_SRCS := $(sort $(foreach d,$(ENGINE_DIRS),$(shell find $(d) -name '*.c' 2>/dev/null)))
# Bit-exact on every target: no fused multiply-add, SSE floats on x86-64.
ENGINE_CFLAGS := $(HOST_CFLAGS) -ffp-contract=off -Itools
ENGINE_SAN_CFLAGS := $(filter-out -O2,$(ENGINE_CFLAGS)) -O1 -fno-omit-frame-pointer \
                     -fsanitize=address,undefined -fno-sanitize-recover=all

ENGINE_OBJ := $(BUILD)/engine/host
ENGINE_SAN_OBJ := $(BUILD)/engine/san
ENGINE_CORE_OBJS := $(patsubst %.c,$(ENGINE_OBJ)/%.o,$(ENGINE_SRCS))
ENGINE_CORE_SAN_OBJS := $(patsubst %.c,$(ENGINE_SAN_OBJ)/%.o,$(ENGINE_SRCS))

# The host tools (tools/): the CLI, the float reference engine, the model writer.
TRAINER_SRCS := $(sort $(wildcard tools/train/*.c tools/float/*.c tools/model_writer/*.c))
TRAINER_OBJS := $(patsubst %.c,$(ENGINE_OBJ)/%.o,$(TRAINER_SRCS))
TINYRIG_TRAIN := $(BUILD)/host/tinyrig-train

# Unit tests: printf + exit code only (they also run under QEMU semihosting).
ENGINE_TESTS := $(sort $(basename $(notdir $(wildcard tests/engine/test_*.c))))
ENGINE_TEST_HELPERS := tools/float/float_layers.c tools/float/float_engine.c tools/model_writer/trainer_model.c
ENGINE_TEST_BINS := $(patsubst %,$(BUILD)/engine/tests/%,$(ENGINE_TESTS))
ENGINE_TEST_SAN_BINS := $(patsubst %,$(BUILD)/engine/tests-san/%,$(ENGINE_TESTS))

$(ENGINE_OBJ)/%.o: %.c
	@mkdir -p $(dir $@)
	$(HOST_CC) $(ENGINE_CFLAGS) -MMD -MP -c $< -o $@

$(ENGINE_SAN_OBJ)/%.o: %.c
	@mkdir -p $(dir $@)
	$(HOST_CC) $(ENGINE_SAN_CFLAGS) -MMD -MP -c $< -o $@

$(TINYRIG_TRAIN): $(ENGINE_CORE_OBJS) $(TRAINER_OBJS)
	@mkdir -p $(dir $@)
	$(HOST_CC) $(ENGINE_CFLAGS) $^ -o $@ -lm

$(BUILD)/engine/tests/%: $(ENGINE_OBJ)/tests/engine/%.o $(ENGINE_CORE_OBJS) \
		$(patsubst %.c,$(ENGINE_OBJ)/%.o,$(ENGINE_TEST_HELPERS))
	@mkdir -p $(dir $@)
	$(HOST_CC) $(ENGINE_CFLAGS) $^ -o $@ -lm

$(BUILD)/engine/tests-san/%: $(ENGINE_SAN_OBJ)/tests/engine/%.o $(ENGINE_CORE_SAN_OBJS) \
		$(patsubst %.c,$(ENGINE_SAN_OBJ)/%.o,$(ENGINE_TEST_HELPERS))
	@mkdir -p $(dir $@)
	$(HOST_CC) $(ENGINE_SAN_CFLAGS) $^ -o $@ -lm

-include $(ENGINE_CORE_OBJS:.o=.d) $(TRAINER_OBJS:.o=.d) $(ENGINE_CORE_SAN_OBJS:.o=.d)

# Every engine file must compile warning-free for ARMv6-M and ARMv7E-M.
ENGINE_ARM_CC ?= arm-none-eabi-gcc
ENGINE_ARM_FLAGS := -std=c99 -Os -Wall -Wextra -Werror -ffp-contract=off -Icore -mthumb
ENGINE_ARM_STAMPS := $(BUILD)/engine/arm-m0plus.ok $(BUILD)/engine/arm-m4.ok

$(BUILD)/engine/arm-%.ok: $(ENGINE_SRCS)
	@mkdir -p $(BUILD)/engine/arm-$*
	@set -e; for f in $(ENGINE_SRCS); do \
		$(ENGINE_ARM_CC) $(ENGINE_ARM_FLAGS) -mcpu=cortex-$* -c $$f \
			-o $(BUILD)/engine/arm-$*/$$(echo $$f | tr / _).o; done
	@touch $@

# Dataset run: a short Fashion-MNIST training must learn (skipped without the data).
ENGINE_FMNIST := /usr/share/datasets/fashion-mnist

.PHONY: engine-test engine-unit-test engine-san-test engine-arm-check engine-learn-test
engine-unit-test: $(ENGINE_TEST_BINS)
	@set -e; for t in $(ENGINE_TEST_BINS); do $$t; done
engine-san-test: $(ENGINE_TEST_SAN_BINS)
	@set -e; for t in $(ENGINE_TEST_SAN_BINS); do \
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 $$t; done
engine-arm-check: $(ENGINE_ARM_STAMPS)
engine-learn-test: $(TINYRIG_TRAIN)
	@if [ -f $(ENGINE_FMNIST)/train-images-idx3-ubyte.gz ]; then \
		sh tests/engine/learn_test.sh $(TINYRIG_TRAIN); \
	else echo "engine-learn-test: no Fashion-MNIST in $(ENGINE_FMNIST), skipped"; fi
engine-test: engine-unit-test engine-san-test engine-arm-check $(if $(wildcard tests/engine/learn_test.sh),engine-learn-test)

ALL_TARGETS += $(TINYRIG_TRAIN)
TEST_TARGETS += engine-test
