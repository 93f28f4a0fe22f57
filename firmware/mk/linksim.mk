# Link simulator: line rate, latency, corruption, drops and unplugs between a
# device-side tty and a host PTY (tools/linksim/). Used by test/link and bench:wire.
#   make -C firmware build/host/tinyrig-linksim

LINKSIM := $(BUILD)/host/tinyrig-linksim

$(LINKSIM): ../tools/linksim/linksim.c
	@mkdir -p $(dir $@)
	$(HOST_CC) $(HOST_CFLAGS) $< -o $@ -lm

ALL_TARGETS += $(LINKSIM)
