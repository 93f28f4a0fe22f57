# QEMU MPS2 stand-ins (bare metal, arm-none-eabi-gcc + newlib nano).
QEMU_CC := arm-none-eabi-gcc
QEMU_M4_FLAGS := -mcpu=cortex-m4 -mthumb -mfloat-abi=soft -O2 -std=c11 -Wall -Wextra -Werror -Icore -ffunction-sections -fdata-sections
QEMU_M4_LD := -Tports/qemu/qemu_m4.ld -nostartfiles --specs=nano.specs -Wl,--gc-sections

build/qemu/m4/test_boot.elf: ports/qemu/qemu_startup.c tests/qemu/test_boot.c ports/qemu/qemu_m4.ld
	@mkdir -p $(dir $@)
	$(QEMU_CC) $(QEMU_M4_FLAGS) $(QEMU_M4_LD) -o $@ ports/qemu/qemu_startup.c tests/qemu/test_boot.c

.PHONY: qemu-test-boot
qemu-test-boot: build/qemu/m4/test_boot.elf
	timeout 30 qemu-system-arm -M mps2-an386 -display none -monitor none -serial none -semihosting -icount shift=0 -kernel $<

ALL_TARGETS += build/qemu/m4/test_boot.elf
TEST_TARGETS += qemu-test-boot
