/* CRC-32, a nibble table: 64 bytes of table, two lookups per byte. */
#include "proto/tr_crc32.h"

static const uint32_t NIBBLE[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u, 0x4DB26158u, 0x5005713Cu,
    0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu, 0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu
};

tr_status tr_crc32_update(uint32_t *reg, const uint8_t *data, size_t len)
{
    uint32_t c;
    size_t i;

    if (reg == NULL || (data == NULL && len != 0u)) {
        return TR_ERR_ARG;
    }
    c = *reg;
    for (i = 0; i < len; i++) {
        c ^= data[i];
        c = (c >> 4) ^ NIBBLE[c & 0xFu];
        c = (c >> 4) ^ NIBBLE[c & 0xFu];
    }
    *reg = c;
    return TR_OK;
}

tr_status tr_crc32(const uint8_t *data, size_t len, uint32_t *crc)
{
    uint32_t c = TR_CRC32_INIT;
    tr_status s;

    if (crc == NULL) {
        return TR_ERR_ARG;
    }
    s = tr_crc32_update(&c, data, len);
    if (s == TR_OK) {
        *crc = c ^ 0xFFFFFFFFu;
    }
    return s;
}
