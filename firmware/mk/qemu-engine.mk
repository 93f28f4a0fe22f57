# Instructions per forward MAC of the reference CNN on the M4 and M7 stand-ins,
# with the reference kernels and with the ARMv7E-M SIMD kernels (TR_KERNELS_DSP):
# tests/qemu-engine/bench_kernels.c under semihosting, read by bench/kernels.ts.
#   make -C firmware qemu-kernels-bench      (builds and runs the four images)
# The engine's unit tests on these stand-ins are in mk/qemu.mk (qemu-engine-test).
# This file is read before mk/qemu.mk: its per-class variables (QEMU_CFLAGS_<class>,
# QEMU_MACHINE_<class>, QEMU_RUN) are only used in recipes, expanded when they run.

QEMU_KBENCH_CLASSES := m4 m7
QEMU_KBENCH_PORT := ports/qemu/qemu_startup.c ports/qemu/qemu_uart.c ports/qemu/qemu_counter.c \
    ports/qemu/qemu_watchdog.c ports/qemu/qemu_syscalls.c
QEMU_KBENCH_SRCS := $(ENGINE_SRCS) tools/model_writer/trainer_model.c $(QEMU_KBENCH_PORT) \
    tests/qemu-engine/bench_kernels.c

# $(1) class, $(2) kernels (ref | dsp)
define QEMU_KBENCH
QEMU_KBENCH_OBJ_$(1)_$(2) := $(BUILD)/qemu/$(1)/kbench-$(2)
QEMU_KBENCH_OBJS_$(1)_$(2) := $$(patsubst %.c,$$(QEMU_KBENCH_OBJ_$(1)_$(2))/%.o,$(QEMU_KBENCH_SRCS))

$$(QEMU_KBENCH_OBJ_$(1)_$(2))/%.o: %.c mk/boards.mk
	@mkdir -p $$(dir $$@)
	$$(QEMU_CC) $$(QEMU_CFLAGS_$(1)) $(if $(filter dsp,$(2)),-DTR_KERNELS_DSP) -Itools \
	    -Wno-unused-function -MMD -MP -c $$< -o $$@

$(BUILD)/qemu/$(1)/bench_kernels_$(2).elf: $$(QEMU_KBENCH_OBJS_$(1)_$(2)) ports/qemu/qemu_test.ld
	$$(QEMU_CC) $$(QEMU_CFLAGS_$(1)) -Lports/qemu -Tports/qemu/qemu_test.ld -nostartfiles \
	    --specs=nano.specs -Wl,--gc-sections $$(filter %.o,$$^) -lm -o $$@

-include $$(QEMU_KBENCH_OBJS_$(1)_$(2):.o=.d)
ALL_TARGETS += $(BUILD)/qemu/$(1)/bench_kernels_$(2).elf
endef

$(foreach c,$(QEMU_KBENCH_CLASSES),$(foreach k,ref dsp,$(eval $(call QEMU_KBENCH,$(c),$(k)))))

.PHONY: qemu-kernels-bench
qemu-kernels-bench: $(foreach c,$(QEMU_KBENCH_CLASSES),$(BUILD)/qemu/$(c)/bench_kernels_ref.elf \
                                                       $(BUILD)/qemu/$(c)/bench_kernels_dsp.elf)
	@$(foreach c,$(QEMU_KBENCH_CLASSES),$(foreach k,ref dsp,echo "KERNELS_RUN $(c) $(k) $(QEMU_MACHINE_$(c))" && \
	    $(QEMU_RUN) -M $(QEMU_MACHINE_$(c)) -kernel $(BUILD)/qemu/$(c)/bench_kernels_$(k).elf 2>&1 && )) true
