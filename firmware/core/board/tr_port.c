/* tr_port_start and the device's memory size (board/tr_port.h). */
#include "board/tr_port.h"

size_t tr_device_storage_bytes(const tr_device_config *cfg)
{
    if (cfg == NULL) {
        return 0;
    }
    return 2u * (size_t)cfg->max_frame + TR_FRAME_WIRE_MAX((size_t)cfg->max_frame) +
           (size_t)cfg->sample_slots * (cfg->sample_bytes_max + sizeof(tr_sample_meta)) +
           cfg->blob_max + TR_DEVICE_BITMAP_BYTES((size_t)cfg->blob_max) + cfg->arena_bytes +
           cfg->max_train * sizeof(tr_train_record) + sizeof(tr_device);
}

tr_status tr_port_start(const tr_device_storage *store, const tr_port *port)
{
    if (store == NULL) {
        return TR_ERR_ARG;
    }
    return tr_device_init(store->dev, &store->cfg, &store->mem, port);
}
