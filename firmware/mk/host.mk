# Host twin: the device main loop on Linux over a PTY, with the engine linked in.
#   make -C firmware build/host/tinyrig-twin
#   build/host/tinyrig-twin [--link PATH] [--board NAME] [--arena BYTES] [--window N]
#                           [--max-frame N] [--boot-id N] [--quiet]

TWIN := $(BUILD)/host/tinyrig-twin
TWIN_OBJ := $(BUILD)/twin
TWIN_GIT := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
# Bit-exact with the engine's other builds: no fused multiply-add.
TWIN_CFLAGS := $(HOST_CFLAGS) -ffp-contract=off -DTR_WITH_ENGINE
TWIN_SRCS := $(CORE_SRCS) ports/host/twin.c ports/host/twin_board.c
TWIN_OBJS := $(patsubst %.c,$(TWIN_OBJ)/%.o,$(TWIN_SRCS))

$(TWIN_OBJ)/%.o: %.c
	@mkdir -p $(dir $@)
	$(HOST_CC) $(TWIN_CFLAGS) -MMD -MP -c $< -o $@

$(TWIN_OBJ)/ports/host/twin_board.o: ports/host/twin_board.c
	@mkdir -p $(dir $@)
	$(HOST_CC) $(TWIN_CFLAGS) -DTR_BUILD_ID='"0.1.0+$(TWIN_GIT)-host"' -MMD -MP -c $< -o $@

$(TWIN): $(TWIN_OBJS)
	@mkdir -p $(dir $@)
	$(HOST_CC) $(TWIN_CFLAGS) $^ -o $@ -lm

-include $(TWIN_OBJS:.o=.d)

ALL_TARGETS += $(TWIN)
