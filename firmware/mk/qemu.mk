# QEMU MPS2 stand-ins for the three board classes (DESIGN §3, boards.json):
#   m0plus  ARMv6-M code on mps2-an385 (RP2040: 133 MHz, 264 KiB)
#   m4      Cortex-M4 on mps2-an386    (nRF52840: 64 MHz, 256 KiB)
#   m7      Cortex-M7 on mps2-an500    (STM32F746: 216 MHz, 320 KiB)
# Per class: build/qemu/<class>/tinyrig-board.elf (dispatcher + engine on the
# UART) and the port tests tests/qemu/test_*.c under semihosting (make test);
# qemu-board-uart-<class> drives the board over its PTY from the host.
#   make -C firmware qemu-boards
#   QEMU_MACHINE_<class>, QEMU_CFLAGS_<class>, QEMU_LD_<class> are for other rules.

QEMU_CC := arm-none-eabi-gcc
QEMU_CLASSES := $(BOARD_CLASSES)
QEMU_GIT := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
# Each class's figures come from boards.json through mk/boards.mk (BOARD_*_<class>).
QEMU_PORT_TESTS := $(patsubst tests/qemu/test_%.c,%,$(wildcard tests/qemu/test_*.c))
# The time-out only catches a hung image: test_model takes ~40 s of a quiet core
# and several times that on a loaded machine (the result never depends on it: -icount).
QEMU_RUN := timeout 600 qemu-system-arm -display none -monitor none -serial none -semihosting -icount shift=0
# Kernels: ARMv7E-M SIMD (core/kernels/tr_kernels_dsp.c) on the M4 and M7, the
# portable references on the M0+ (ARMv6-M has no SIMD). Bit-identical either way.
QEMU_KERNELS_m0plus :=
QEMU_KERNELS_m4 := -DTR_KERNELS_DSP
QEMU_KERNELS_m7 := -DTR_KERNELS_DSP

define QEMU_CLASS
QEMU_MACHINE_$(1) := $(BOARD_QEMU_MACHINE_$(1))
QEMU_CFLAGS_$(1) := $(BOARD_QEMU_CPU_FLAGS_$(1)) -O2 -std=c99 -Wall -Wextra -Werror \
    -Wno-unused-parameter -Icore -Iports/qemu -ffunction-sections -fdata-sections -ffp-contract=off
QEMU_LD_$(1) := -Lports/qemu -Tports/qemu/qemu_$(1).ld -nostartfiles --specs=nano.specs -Wl,--gc-sections
QEMU_BOARD_DEFS_$(1) := -DTR_WITH_ENGINE $(QEMU_KERNELS_$(1)) -DTR_QEMU_BOARD='"qemu-$$(QEMU_MACHINE_$(1))"' \
    -DTR_QEMU_CPU='"$(BOARD_CPU_$(1))"' -DTR_QEMU_CLOCK_HZ=$(BOARD_CLOCK_HZ_$(1))u \
    -DTR_QEMU_RAM_BYTES=$(BOARD_RAM_BYTES_$(1))u -DTR_QEMU_ARENA_BYTES=$(BOARD_ARENA_BYTES_$(1))u \
    -DTR_QEMU_MAX_FRAME=$(BOARD_MAX_FRAME_$(1))u -DTR_QEMU_BLOB_MAX=$(BOARD_BLOB_MAX_$(1))u \
    -DTR_QEMU_SAMPLE_BYTES_MAX=$(BOARD_SAMPLE_BYTES_MAX_$(1))u -DTR_BUILD_ID='"0.1.0+$(QEMU_GIT)-$(1)"'
QEMU_PORT_SRCS_$(1) := ports/qemu/qemu_startup.c ports/qemu/qemu_uart.c ports/qemu/qemu_counter.c \
    ports/qemu/qemu_watchdog.c

$(BUILD)/qemu/$(1)/obj/%.o: %.c mk/boards.mk
	@mkdir -p $$(dir $$@)
	$(QEMU_CC) $$(QEMU_CFLAGS_$(1)) $$(QEMU_BOARD_DEFS_$(1)) -MMD -MP -c $$< -o $$@

QEMU_BOARD_OBJS_$(1) := $$(patsubst %.c,$(BUILD)/qemu/$(1)/obj/%.o,$(CORE_SRCS) $$(QEMU_PORT_SRCS_$(1)) ports/qemu/qemu_board.c)

$(BUILD)/qemu/$(1)/tinyrig-board.elf: $$(QEMU_BOARD_OBJS_$(1)) ports/qemu/qemu_$(1).ld ports/qemu/qemu_common.ld
	$(QEMU_CC) $$(QEMU_CFLAGS_$(1)) $$(QEMU_LD_$(1)) -Wl,-Map=$$(@:.elf=.map) $$(QEMU_BOARD_OBJS_$(1)) -lm -o $$@

# Port tests under semihosting: tests/qemu/test_<name>.c -> qemu-test-<name>-<class>
$(BUILD)/qemu/$(1)/test_%.elf: tests/qemu/test_%.c $$(QEMU_PORT_SRCS_$(1)) ports/qemu/qemu_$(1).ld ports/qemu/qemu_common.ld
	@mkdir -p $$(dir $$@)
	$(QEMU_CC) $$(QEMU_CFLAGS_$(1)) $$(QEMU_LD_$(1)) -o $$@ $$(QEMU_PORT_SRCS_$(1)) $$<

qemu-test-%-$(1): $(BUILD)/qemu/$(1)/test_%.elf
	$(QEMU_RUN) -M $$(QEMU_MACHINE_$(1)) -kernel $$<

# The board from the host over its UART PTY, started as the rig starts it:
# HELLO (values from boards.json), a max_frame PING, STATS, idle CPU.
.PHONY: qemu-board-uart-$(1)
qemu-board-uart-$(1): $(BUILD)/qemu/board_uart $(BUILD)/qemu/$(1)/tinyrig-board.elf
	timeout 60 $(BUILD)/qemu/board_uart $$(QEMU_MACHINE_$(1)) $(BUILD)/qemu/$(1)/tinyrig-board.elf \
	    qemu-$$(QEMU_MACHINE_$(1)) $(BOARD_CPU_$(1)) $(BOARD_CLOCK_HZ_$(1)) $(BOARD_RAM_BYTES_$(1))

-include $$(QEMU_BOARD_OBJS_$(1):.o=.d)
ALL_TARGETS += $(BUILD)/qemu/$(1)/tinyrig-board.elf $(foreach t,$(QEMU_PORT_TESTS),$(BUILD)/qemu/$(1)/test_$(t).elf)
TEST_TARGETS += $(foreach t,$(QEMU_PORT_TESTS),qemu-test-$(t)-$(1)) qemu-board-uart-$(1)
endef

$(foreach c,$(QEMU_CLASSES),$(eval $(call QEMU_CLASS,$(c))))

# Host-side driver of the board UART test (the protocol's C codec).
$(BUILD)/qemu/board_uart: tests/qemu/board_uart.c tests/qemu/pty_client.h tests/proto/proto_test.h $(CORE_SRCS) $(wildcard core/*/*.h)
	@mkdir -p $(dir $@)
	$(HOST_CC) $(HOST_CFLAGS) -DTR_WITH_ENGINE $< $(CORE_SRCS) -o $@ -lm
ALL_TARGETS += $(BUILD)/qemu/board_uart

.PHONY: qemu-boards
qemu-boards: $(foreach c,$(QEMU_CLASSES),$(BUILD)/qemu/$(c)/tinyrig-board.elf)

# The engine's unit tests on the M4 and M7 stand-ins under semihosting, built
# with the ARMv7E-M SIMD kernels (TR_KERNELS_DSP): test_kernels proves them
# bit-identical to the references; test_layers and test_model run every layer
# and the model format on the real instruction set.
#   make -C firmware qemu-engine-test
# Sources come from mk/engine.mk (ENGINE_SRCS, ENGINE_TESTS, ENGINE_TEST_HELPERS)
# and per-class flags from mk/qemu.mk.

QEMU_ENGINE_CLASSES := m4 m7

define QEMU_ENGINE_CLASS
QEMU_ENGINE_OBJ_$(1) := $(BUILD)/qemu/$(1)/engine
QEMU_ENGINE_FLAGS_$(1) := $$(QEMU_CFLAGS_$(1)) $(QEMU_KERNELS_$(1)) -Itools -Wno-unused-function
QEMU_ENGINE_LINK_$(1) := -Lports/qemu -Tports/qemu/qemu_test.ld -nostartfiles --specs=nano.specs -Wl,--gc-sections
QEMU_ENGINE_LIB_$(1) := $$(patsubst %.c,$$(QEMU_ENGINE_OBJ_$(1))/%.o,$(ENGINE_SRCS) $(ENGINE_TEST_HELPERS) \
    $$(QEMU_PORT_SRCS_$(1)) ports/qemu/qemu_syscalls.c)

$$(QEMU_ENGINE_OBJ_$(1))/%.o: %.c mk/boards.mk
	@mkdir -p $$(dir $$@)
	$(QEMU_CC) $$(QEMU_ENGINE_FLAGS_$(1)) -MMD -MP -c $$< -o $$@

$(BUILD)/qemu/$(1)/engine-tests/%.elf: $$(QEMU_ENGINE_OBJ_$(1))/tests/engine/%.o $$(QEMU_ENGINE_LIB_$(1)) ports/qemu/qemu_test.ld
	@mkdir -p $$(dir $$@)
	$(QEMU_CC) $$(QEMU_ENGINE_FLAGS_$(1)) $$(QEMU_ENGINE_LINK_$(1)) $$(filter %.o,$$^) -lm -o $$@

.PHONY: qemu-engine-test-$(1)
qemu-engine-test-$(1): $(foreach t,$(ENGINE_TESTS),$(BUILD)/qemu/$(1)/engine-tests/$(t).elf)
	@for t in $$^; do echo "$(1): $$$$t"; $(QEMU_RUN) -M $$(QEMU_MACHINE_$(1)) -kernel $$$$t || exit 1; done

-include $$(QEMU_ENGINE_LIB_$(1):.o=.d)
ALL_TARGETS += $(foreach t,$(ENGINE_TESTS),$(BUILD)/qemu/$(1)/engine-tests/$(t).elf)
TEST_TARGETS += qemu-engine-test-$(1)
endef

$(foreach c,$(QEMU_ENGINE_CLASSES),$(eval $(call QEMU_ENGINE_CLASS,$(c))))

.PHONY: qemu-engine-test
qemu-engine-test: $(foreach c,$(QEMU_ENGINE_CLASSES),qemu-engine-test-$(c))
