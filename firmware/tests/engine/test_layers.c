/* Every layer, forward and backward, against the float32 reference layers
 * (tools/float/float_layers.c) on random shapes, and gradient checks against
 * central differences of the float forward. Each tolerance is derived from
 * the quantization steps involved (stated next to each check), not tuned. */
#include <math.h>
#include <string.h>
#include "engine/tr_layers.h"
#include "float/float_layers.h"
#include "tr_test.h"

#define MAXE 4096
#define MAXW 4096

static uint8_t xq[MAXE], yq[MAXE], eq[MAXE], einq[MAXE];
static float xf[MAXE], yf[MAXE], ef[MAXE], einf[MAXE], tmp[MAXE], tmp2[MAXE];
static int8_t wq[MAXW];
static float wf[MAXW], wscale[256], bf[256], gf[MAXW];
static int32_t bias[256], range_seen[1], acc[MAXE], g[MAXW], scratch[6 * 256];
static float range[2];

static uint32_t elems(const tr_shape *s)
{
    return s->h * s->w * s->c;
}

static tr_qparam random_q(float span)
{
    float lo = -span * trand_unit();
    float hi = span * (0.05f + trand_unit());
    return tr_qparam_from_range(lo, hi);
}

static void random_tensor(uint8_t *q, float *f, uint32_t n, tr_qparam qp)
{
    for (uint32_t i = 0; i < n; i++) {
        q[i] = (uint8_t)trand();
        f[i] = qp.s * (float)((int32_t)q[i] - qp.z);
    }
}

static float maxabs(const float *v, uint32_t n)
{
    float m = 0.0f;
    for (uint32_t i = 0; i < n; i++) {
        m = fabsf(v[i]) > m ? fabsf(v[i]) : m;
    }
    return m;
}

/* L(x) = sum_i e_i * y_i(x) with the fused activation off: its gradient
 * wrt x is the backward error, wrt w the weight gradient. */
static double probe(const tr_layer *L0, const float *x, const float *w, const float *b,
                    const float *e)
{
    tr_layer L = *L0;
    double s = 0.0;
    L.act = TR_ACT_NONE;
    tr_f_param_forward(&L, x, w, b, tmp2);
    for (uint32_t i = 0; i < elems(&L.out); i++) {
        s += (double)e[i] * tmp2[i];
    }
    return s;
}

static void test_param_layer(int iter)
{
    tr_layer L;
    tr_shape in;
    tr_lparams P;
    tr_obs obs;
    tr_qparam qin, qout, qe, qein;
    float smax = 0.0f, unit;
    uint32_t nin, nout, nw, C, terms;
    memset(&L, 0, sizeof L);
    L.kind = (uint8_t)(iter % 3 == 0 ? TR_LAYER_CONV2D : iter % 3 == 1 ? TR_LAYER_DENSE
                                                                        : TR_LAYER_DWCONV2D);
    L.act = (uint8_t)(trand() & 1u);
    L.wq = (uint8_t)((trand() % 4u) == 0 ? TR_WQ_PER_TENSOR : TR_WQ_PER_CHANNEL);
    in.h = trand_range(1, 9);
    in.w = trand_range(1, 9);
    in.c = trand_range(1, 6);
    L.kh = (uint16_t)trand_range(1, 3);
    L.kw = (uint16_t)trand_range(1, 3);
    if (L.kh > in.h + 2u || L.kw > in.w + 2u) {
        L.kh = L.kw = 1;
    }
    L.stride = (uint16_t)trand_range(1, 2);
    L.pad = (uint16_t)trand_range(0, (uint32_t)(L.kh < L.kw ? L.kh : L.kw) - 1u);
    L.units = (uint16_t)trand_range(1, 8);
    if (tr_model_resolve_layer(&L, &in, 0, 0) != TR_OK) {
        return; /* window larger than the input: nothing to test */
    }
    nin = elems(&L.in);
    nout = elems(&L.out);
    C = L.channels;
    nw = C * L.fan_in;
    if (nin > MAXE || nout > MAXE || nw > MAXW) {
        return;
    }
    /* parameters */
    {
        float s0 = 0.002f + 0.03f * trand_unit();
        for (uint32_t c = 0; c < C; c++) {
            wscale[c] = (L.wq == TR_WQ_PER_TENSOR) ? s0 : 0.002f + 0.03f * trand_unit();
            smax = wscale[c] > smax ? wscale[c] : smax;
            bias[c] = (int32_t)(trand() % 524288u) - 262144;
            bf[c] = (float)bias[c] * 9.5367431640625e-07f;
        }
        for (uint32_t k = 0; k < nw; k++) {
            uint32_t c = (L.kind == TR_LAYER_DWCONV2D) ? k % C : k / L.fan_in;
            wq[k] = (int8_t)((int32_t)(trand() % 255u) - 127);
            wf[k] = wscale[c] * (float)wq[k];
        }
    }
    P.range = range;
    P.seen = (uint32_t *)range_seen;
    P.scale = wscale;
    P.bias = bias;
    P.w = wq;
    qin = random_q(2.0f);
    random_tensor(xq, xf, nin, qin);

    /* forward: float output sets the output range (as the EMA would) */
    tr_f_param_forward(&L, xf, wf, bf, yf);
    {
        float lo = 0.0f, hi = 0.0f;
        for (uint32_t i = 0; i < nout; i++) {
            lo = yf[i] < lo ? yf[i] : lo;
            hi = yf[i] > hi ? yf[i] : hi;
        }
        qout = tr_qparam_from_range(L.act == TR_ACT_RELU ? 0.0f : lo, hi + 1e-3f);
    }
    if (L.kind == TR_LAYER_CONV2D) {
        tr_conv2d_forward(&L, &P, xq, qin, yq, qout, scratch, &obs);
    } else if (L.kind == TR_LAYER_DENSE) {
        tr_dense_forward(&L, &P, xq, qin, yq, qout, scratch, &obs);
    } else {
        tr_dwconv2d_forward(&L, &P, xq, qin, yq, qout, scratch, &obs);
    }
    {
        /* rounding of the output (half a step) and of the bias in accumulator
         * units (half a step of s_in * s_w), plus float rounding */
        float tol = 0.5f * qout.s + 0.5f * qin.s * smax + 1e-5f * (1.0f + maxabs(yf, nout));
        for (uint32_t i = 0; i < nout; i++) {
            float got = qout.s * (float)((int32_t)yq[i] - qout.z);
            CHECK(fabsf(got - yf[i]) <= tol, "kind %u fwd[%u] %g vs %g tol %g", L.kind,
                  (unsigned)i, got, yf[i], tol);
        }
    }

    /* backward error and gradients: random upstream error, ReLU mask from
     * the int8 output (the float reference uses the same mask) */
    qe = random_q(1.0f);
    random_tensor(eq, ef, nout, qe);
    if (L.act == TR_ACT_RELU) {
        tr_relu_mask_error(yq, qout, eq, qe, nout);
        for (uint32_t i = 0; i < nout; i++) {
            ef[i] = qe.s * (float)((int32_t)eq[i] - qe.z);
        }
    }
    if (L.kind == TR_LAYER_CONV2D) {
        tr_conv2d_backward(&L, &P, eq, qe, NULL, scratch, acc, &unit);
        terms = (uint32_t)((L.kh + L.stride - 1) / L.stride) * ((L.kw + L.stride - 1) / L.stride) * C;
    } else if (L.kind == TR_LAYER_DENSE) {
        tr_dense_backward(&L, &P, eq, qe, NULL, scratch, acc, &unit);
        terms = C;
    } else {
        tr_dwconv2d_backward(&L, &P, eq, qe, NULL, scratch, acc, &unit);
        terms = (uint32_t)((L.kh + L.stride - 1) / L.stride) * ((L.kw + L.stride - 1) / L.stride);
    }
    tr_error_requant(acc, nin, unit, einq, &qein);
    tr_f_param_backward(&L, wf, ef, NULL, einf);
    {
        /* per term: the scaled error a is rounded to 2^-k steps of s_e*max(s_w)
         * and the channel ratio to 2^-16; dwconv rounds the rescaled sum once;
         * then the requantized result is within half a step of s_ein */
        float k2 = (L.kind == TR_LAYER_DWCONV2D) ? 0.0f : ldexpf(1.0f, -(int)L.err_shift);
        float per_term = 127.0f * qe.s * smax * (0.5f * k2 + 255.0f / 65536.0f);
        float tol = 0.5f * qein.s + (float)terms * per_term + 0.5f * qe.s * smax +
                    1e-5f * (1.0f + maxabs(einf, nin));
        for (uint32_t j = 0; j < nin; j++) {
            float got = qein.s * (float)((int32_t)einq[j] - qein.z);
            CHECK(fabsf(got - einf[j]) <= tol, "kind %u err_in[%u] %g vs %g tol %g", L.kind,
                  (unsigned)j, got, einf[j], tol);
        }
        /* numerical gradient wrt the input: the layer is linear in x, so the
         * central difference is exact up to float rounding */
        for (uint32_t t = 0; t < 6 && nin > 0; t++) {
            uint32_t j = trand() % nin;
            float keep = xf[j];
            double num, fp, fm;
            xf[j] = keep + 0.25f;
            fp = probe(&L, xf, wf, bf, ef);
            xf[j] = keep - 0.25f;
            fm = probe(&L, xf, wf, bf, ef);
            xf[j] = keep;
            num = (fp - fm) / 0.5;
            {
                float got = qein.s * (float)((int32_t)einq[j] - qein.z);
                CHECK(fabs(num - got) <= tol + 1e-4 * (1.0 + fabs(num)),
                      "kind %u numeric d/dx[%u] %g vs %g", L.kind, (unsigned)j, num, got);
            }
        }
    }
    /* weight and bias gradient: exact integer sums of dequantized products */
    for (uint32_t c = 0; c < C; c++) {
        int32_t gb;
        float gbf;
        if (L.kind == TR_LAYER_CONV2D) {
            tr_conv2d_grad(&L, xq, qin, eq, qe, c, g, &gb);
        } else if (L.kind == TR_LAYER_DENSE) {
            tr_dense_grad(&L, xq, qin, eq, qe, c, g, &gb);
        } else {
            tr_dwconv2d_grad(&L, xq, qin, eq, qe, c, g, &gb);
        }
        tr_f_param_grad(&L, xf, ef, c, gf, &gbf);
        {
            float gu = qe.s * qin.s;
            float tol = 1e-4f * (1.0f + maxabs(gf, L.fan_in));
            for (uint32_t j = 0; j < L.fan_in; j++) {
                CHECK(fabsf((float)g[j] * gu - gf[j]) <= tol, "kind %u grad c%u[%u] %g vs %g",
                      L.kind, (unsigned)c, (unsigned)j, (float)g[j] * gu, gf[j]);
            }
            CHECK(fabsf((float)gb * qe.s - gbf) <= 1e-4f * (1.0f + fabsf(gbf)), "bias grad");
            /* numerical check of one weight */
            if (L.fan_in > 0) {
                uint32_t j = trand() % L.fan_in;
                uint32_t k = (L.kind == TR_LAYER_DWCONV2D) ? j * C + c : c * L.fan_in + j;
                float keep = wf[k];
                double fp, fm, num;
                wf[k] = keep + 0.25f;
                fp = probe(&L, xf, wf, bf, ef);
                wf[k] = keep - 0.25f;
                fm = probe(&L, xf, wf, bf, ef);
                wf[k] = keep;
                num = (fp - fm) / 0.5;
                CHECK(fabs(num - (double)g[j] * gu) <= 1e-4 * (1.0 + fabs(num)) +
                                                           1e-4 * maxabs(gf, L.fan_in),
                      "kind %u numeric d/dw %g vs %g", L.kind, num, (double)g[j] * gu);
            }
        }
    }
    (void)obs;
}

static void test_pool_layers(int iter)
{
    tr_layer L;
    tr_shape in;
    tr_qparam q, qe, qein;
    uint32_t nin, nout;
    memset(&L, 0, sizeof L);
    L.kind = (uint8_t)(iter % 4 == 0 ? TR_LAYER_MAXPOOL : iter % 4 == 1 ? TR_LAYER_AVGPOOL
                       : iter % 4 == 2 ? TR_LAYER_GAP : TR_LAYER_RELU);
    in.h = trand_range(2, 9);
    in.w = trand_range(2, 9);
    in.c = trand_range(1, 5);
    L.kh = (uint16_t)trand_range(1, 3);
    L.stride = (uint16_t)trand_range(1, 3);
    if (tr_model_resolve_layer(&L, &in, 0, 0) != TR_OK) {
        return;
    }
    nin = elems(&L.in);
    nout = elems(&L.out);
    q = random_q(2.0f);
    random_tensor(xq, xf, nin, q);
    qe = random_q(1.0f);
    random_tensor(eq, ef, nout, qe);
    if (L.kind == TR_LAYER_MAXPOOL) {
        tr_maxpool_forward(&L, xq, yq);
        tr_f_maxpool_forward(&L, xf, yf);
        tr_maxpool_backward(&L, xq, yq, eq, qe, acc, einq, &qein);
        tr_f_maxpool_backward(&L, xf, ef, einf);
    } else if (L.kind == TR_LAYER_AVGPOOL) {
        tr_avgpool_forward(&L, xq, yq);
        tr_f_avgpool_forward(&L, xf, yf);
        tr_avgpool_backward(&L, eq, qe, acc, einq, &qein);
        tr_f_avgpool_backward(&L, ef, einf);
    } else if (L.kind == TR_LAYER_GAP) {
        tr_gap_forward(&L, xq, yq);
        tr_f_gap_forward(&L, xf, yf);
        tr_gap_backward(&L, eq, qe, einq, &qein);
        tr_f_gap_backward(&L, ef, einf);
    } else {
        tr_relu_forward(&L, xq, q, yq);
        tr_f_relu_forward(&L, xf, yf);
        tr_relu_backward(&L, yq, q, eq, qe, einq, &qein);
        tr_f_relu_backward(&L, yf, ef, einf);
    }
    /* max and relu are exact; a mean is rounded to half an input step */
    for (uint32_t i = 0; i < nout; i++) {
        float got = q.s * (float)((int32_t)yq[i] - q.z);
        float tol = (L.kind == TR_LAYER_AVGPOOL || L.kind == TR_LAYER_GAP) ? 0.5f * q.s + 1e-5f
                                                                            : 1e-5f;
        CHECK(fabsf(got - yf[i]) <= tol, "pool kind %u fwd %g vs %g", L.kind, got, yf[i]);
    }
    /* routed errors are exact without overlap; overlapping windows sum in
     * int32 and are requantized: half a step of the new scale */
    for (uint32_t j = 0; j < nin; j++) {
        float got = qein.s * (float)((int32_t)einq[j] - qein.z);
        float tol = 0.5f * qein.s + 1e-5f * (1.0f + maxabs(einf, nin));
        if (L.stride >= L.kh || L.kind == TR_LAYER_GAP || L.kind == TR_LAYER_RELU) {
            tol = 1e-5f * (1.0f + maxabs(einf, nin));
        }
        CHECK(fabsf(got - einf[j]) <= tol, "pool kind %u err_in[%u] %g vs %g", L.kind,
              (unsigned)j, got, einf[j]);
    }
    /* numerical gradient of the linear pools */
    if (L.kind == TR_LAYER_AVGPOOL || L.kind == TR_LAYER_GAP) {
        uint32_t j = trand() % nin;
        double fp = 0.0, fm = 0.0;
        float keep = xf[j];
        xf[j] = keep + 0.25f;
        (L.kind == TR_LAYER_AVGPOOL ? tr_f_avgpool_forward : tr_f_gap_forward)(&L, xf, tmp);
        for (uint32_t i = 0; i < nout; i++) {
            fp += (double)ef[i] * tmp[i];
        }
        xf[j] = keep - 0.25f;
        (L.kind == TR_LAYER_AVGPOOL ? tr_f_avgpool_forward : tr_f_gap_forward)(&L, xf, tmp);
        for (uint32_t i = 0; i < nout; i++) {
            fm += (double)ef[i] * tmp[i];
        }
        xf[j] = keep;
        {
            double num = (fp - fm) / 0.5;
            float got = qein.s * (float)((int32_t)einq[j] - qein.z);
            CHECK(fabs(num - got) <= 0.5 * qein.s + 1e-4 * (1.0 + fabs(num)),
                  "pool numeric %g vs %g", num, got);
        }
    }
}

static void test_softmax(void)
{
    tr_layer L;
    tr_shape in;
    tr_qparam ql, qerr;
    uint32_t n, label, pred, predf;
    float loss, lossf;
    memset(&L, 0, sizeof L);
    L.kind = TR_LAYER_SOFTMAX;
    in.h = 1;
    in.w = 1;
    in.c = trand_range(2, 40);
    n = in.c;
    if (tr_model_resolve_layer(&L, &in, 1, n) != TR_OK) {
        CHECK(0, "softmax resolve");
        return;
    }
    ql = random_q(8.0f);
    random_tensor(xq, xf, n, ql);
    label = trand() % n;
    tr_softmax_ce(&L, xq, ql, label, &pred, &loss, eq, &qerr);
    lossf = tr_f_softmax_ce(xf, n, label, &predf, ef);
    CHECK(pred == predf, "softmax pred");
    /* loss against a double-precision reference: our exp/log are within 1e-6 */
    {
        double mx = xf[0], s = 0.0;
        for (uint32_t i = 1; i < n; i++) {
            mx = xf[i] > mx ? xf[i] : mx;
        }
        for (uint32_t i = 0; i < n; i++) {
            s += exp((double)xf[i] - mx);
        }
        CHECK(fabs(log(s) - ((double)xf[label] - mx) - loss) <= 1e-5 * (1.0 + loss),
              "loss %g vs %g", loss, log(s) - ((double)xf[label] - mx));
        CHECK(fabsf(loss - lossf) <= 1e-5f * (1.0f + loss), "int vs float loss");
        /* numerical dL/dlogit: error quantized to half a step of its scale */
        for (uint32_t i = 0; i < n; i++) {
            double h = 1e-3, lp, lm, num;
            double sp = 0.0, sm = 0.0;
            for (uint32_t k = 0; k < n; k++) {
                double v = xf[k] - mx;
                sp += exp(v + (k == i ? h : 0.0));
                sm += exp(v - (k == i ? h : 0.0));
            }
            lp = log(sp) - ((double)xf[label] - mx + (label == i ? h : 0.0));
            lm = log(sm) - ((double)xf[label] - mx - (label == i ? h : 0.0));
            num = (lp - lm) / (2.0 * h);
            {
                float got = qerr.s * (float)((int32_t)eq[i] - qerr.z);
                CHECK(fabs(num - got) <= 0.5 * qerr.s + 1e-5, "softmax d/dlogit[%u] %g vs %g",
                      (unsigned)i, num, got);
            }
        }
    }
}

static void test_quant_helpers(void)
{
    /* exp / log / sqrt against libm over a sweep */
    for (int i = 0; i < 2000; i++) {
        float x = -30.0f * trand_unit();
        float y = 1e-6f + 1e4f * trand_unit() * trand_unit();
        CHECK(fabs(tr_exp_neg_f32(x) - exp((double)x)) <= 3e-7 * exp((double)x), "exp(%g)", x);
        CHECK(fabs(tr_log_f32(y) - log((double)y)) <= 1e-6 * (1.0 + fabs(log((double)y))),
              "log(%g)", y);
        CHECK(fabs(tr_sqrt_f32(y) - sqrt((double)y)) <= 2e-7 * sqrt((double)y), "sqrt(%g)", y);
    }
    CHECK(tr_isqrt_u64(0) == 0 && tr_isqrt_u64(15) == 3 && tr_isqrt_u64(16) == 4, "isqrt");
    CHECK(tr_isqrt_u64(0xFFFFFFFFFFFFFFFFull) == 0xFFFFFFFFu, "isqrt max");
    CHECK(tr_round_f32(2.5f) == 3 && tr_round_f32(-2.5f) == -2 && tr_round_f32(-2.6f) == -3,
          "round half up");
    {
        int32_t m, s;
        tr_quant_multiplier(0.75f, &m, &s);
        CHECK(m == (int32_t)(3u << 29) && s == 0, "multiplier 0.75: %ld %ld", (long)m, (long)s);
        tr_quant_multiplier(3.0f, &m, &s);
        CHECK(m == (int32_t)(3u << 29) && s == 2, "multiplier 3");
    }
    {
        tr_qparam q = tr_qparam_from_range(-1.0f, 3.0f);
        CHECK(fabsf(q.s - 4.0f / 255.0f) < 1e-9f && q.z == 64, "qparam %g %ld", q.s, (long)q.z);
    }
}

int main(void)
{
    test_quant_helpers();
    for (int i = 0; i < 300; i++) {
        test_param_layer(i);
    }
    for (int i = 0; i < 200; i++) {
        test_pool_layers(i);
    }
    for (int i = 0; i < 50; i++) {
        test_softmax();
    }
    return tr_test_done("test_layers");
}
