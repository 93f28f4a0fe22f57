/* The A/B model slots (core/store/tr_slots.h) on two flash map partitions,
 * tinyrig_slot_a and tinyrig_slot_b, from the board's overlay. */
#include "port.h"

#ifdef CONFIG_TINYRIG_STORE
#include <zephyr/storage/flash_map.h>

#define SLOT_A FIXED_PARTITION_ID(tinyrig_slot_a)
#define SLOT_B FIXED_PARTITION_ID(tinyrig_slot_b)
BUILD_ASSERT(FIXED_PARTITION_SIZE(tinyrig_slot_a) == FIXED_PARTITION_SIZE(tinyrig_slot_b),
             "the two slots must be the same size");

static const struct flash_area *g_area[2];
static tr_slots g_slots;

static tr_status area_erase(void *ctx, unsigned slot)
{
    (void)ctx;
    return flash_area_erase(g_area[slot], 0, g_area[slot]->fa_size) == 0 ? TR_OK : TR_ERR_STATE;
}

static tr_status area_write(void *ctx, unsigned slot, uint32_t off, const uint8_t *data, size_t len)
{
    (void)ctx;
    return flash_area_write(g_area[slot], off, data, len) == 0 ? TR_OK : TR_ERR_STATE;
}

static tr_status area_read(void *ctx, unsigned slot, uint32_t off, uint8_t *data, size_t len)
{
    (void)ctx;
    return flash_area_read(g_area[slot], off, data, len) == 0 ? TR_OK : TR_ERR_STATE;
}

const tr_slots *tr_flash_slots(void)
{
    uint32_t align;

    if (g_slots.read != NULL) {
        return &g_slots;
    }
    if (flash_area_open(SLOT_A, &g_area[0]) != 0 || flash_area_open(SLOT_B, &g_area[1]) != 0) {
        return NULL;
    }
    align = flash_area_align(g_area[0]);
    if (align == 0u || align > TR_SLOT_CHUNK) {
        return NULL;
    }
    g_slots.slot_bytes = (uint32_t)g_area[0]->fa_size;
    g_slots.write_align = align;
    g_slots.erase = area_erase;
    g_slots.write = area_write;
    g_slots.read = area_read;
    return &g_slots;
}
#else
const tr_slots *tr_flash_slots(void)
{
    return NULL;
}
#endif
