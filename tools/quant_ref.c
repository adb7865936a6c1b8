// Reference blocks for tests/quantize.rs: random f32 rows quantized by llama.cpp's own
// quantize_row_{q8_0,q6_K,q4_K}_ref (ggml-quants.c, compiled unchanged, no FMA contraction).
// Build and run with tools/make_quant_fixtures.sh; writes tests/fixtures/quant/ref.bin:
//   "QREF", u32 rows, u32 row_len, f32 x[rows][row_len], Q8_0 blocks, Q6_K blocks, Q4_K blocks
// (each block array covers all rows, row after row; little-endian).
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ggml-common.h"
#include "ggml-quants.h"
#include "ggml.h"

// ggml-quants.c references these from ggml.c; the *_ref quantizers never call them
void ggml_abort(const char *file, int line, const char *fmt, ...) { fprintf(stderr, "%s:%d %s\n", file, line, fmt); abort(); }
size_t ggml_row_size(enum ggml_type t, int64_t ne) { (void)t; (void)ne; abort(); }
size_t ggml_type_size(enum ggml_type t) { (void)t; abort(); }
const char *ggml_type_name(enum ggml_type t) { (void)t; return "?"; }

#define ROWS 96
#define LEN 256

static uint64_t s = 0x9e3779b97f4a7c15ull;
static uint64_t next(void) {  // splitmix64
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double unif(void) { return (next() >> 11) * (1.0 / 9007199254740992.0); }
static double gauss(void) { return sqrt(-2.0 * log(1.0 - unif())) * cos(6.283185307179586 * unif()); }

static void fill(float *x, int r) {
    static const double scales[] = {1e-6, 1e-3, 0.02, 0.3, 1.0, 7.5, 100.0, 3000.0};
    double sc = scales[r % 8];
    int kind = (r / 8) % 12;
    for (int j = 0; j < LEN; j++) {
        double v;
        switch (kind) {
        case 0: case 1: case 2: v = gauss(); break;                 // plain weights
        case 3: v = 2.0 * unif() - 1.0; break;                      // uniform, symmetric
        case 4: v = unif(); break;                                  // all positive (Q4_K min 0)
        case 5: v = -unif(); break;                                 // all negative
        case 6: v = unif() < 0.9 ? 0.0 : gauss(); break;            // sparse
        case 7: v = (j / 32) % 2 ? 0.0 : gauss(); break;            // whole zero sub-blocks
        case 8: v = gauss() * (unif() < 0.02 ? 60.0 : 1.0); break;  // outliers
        case 9: v = (double)((int)(next() % 33) - 16) * 0.5; break; // halves: rounding ties
        case 10: v = r % 2 ? 1.0 : -0.25; break;                    // constant rows
        default: v = (j == 17 || j == 200) ? gauss() : 0.0; break;  // nearly all zero
        }
        x[j] = (float)(v * sc);
    }
    if (r == ROWS - 1) memset(x, 0, LEN * sizeof(float));          // one all-zero row
}

int main(int argc, char **argv) {
    static float x[ROWS * LEN];
    static block_q8_0 q8[ROWS * LEN / QK8_0];
    static block_q6_K q6[ROWS * LEN / QK_K];
    static block_q4_K q4[ROWS * LEN / QK_K];
    for (int r = 0; r < ROWS; r++) fill(x + r * LEN, r);
    for (int r = 0; r < ROWS; r++) {
        quantize_row_q8_0_ref(x + r * LEN, q8 + r * LEN / QK8_0, LEN);
        quantize_row_q6_K_ref(x + r * LEN, q6 + r * LEN / QK_K, LEN);
        quantize_row_q4_K_ref(x + r * LEN, q4 + r * LEN / QK_K, LEN);
    }
    FILE *f = fopen(argc > 1 ? argv[1] : "ref.bin", "wb");
    if (!f) return 1;
    uint32_t hdr[2] = {ROWS, LEN};
    fwrite("QREF", 1, 4, f);
    fwrite(hdr, 4, 2, f);
    fwrite(x, sizeof x, 1, f);
    fwrite(q8, sizeof q8, 1, f);
    fwrite(q6, sizeof q6, 1, f);
    fwrite(q4, sizeof q4, 1, f);
    return fclose(f);
}
