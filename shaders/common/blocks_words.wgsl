// GGUF's block formats (WDT 4..22, see formats.wgsl) for the fast kernels matvec_blocks.wgsl
// and gemm_blocks.wgsl, which read the packed weights as 16-byte words (`w`, `w2`:
// array<vec4<u32>>, declared in mm_words.wgsl) like the float kernels do.
//
// A lane works through a row in steps of 256 values: G = 8 blocks of a 32-value format or
// one K-quant block, SB bytes. Rows hold whole blocks, so a step may start at any even byte:
// blk_fill loads the 16-byte words that cover it (NWR of them, one more when the step
// straddles it) and shifts them into a BW array that holds the step's bytes from byte 0;
// blk_v4(b, v) then decodes values 4v .. 4v + 3 of the step. Each decode performs the f32
// operations of weights.wgsl's per-element decode in the same order (every product there is
// exact, see src/format/blocks.rs), so the values are bit-identical and a kernel on these
// words differs from the generic matmul only in the order it adds the products up.
//
// The host expands this file with the kernels (src/ops/matmul.rs): a line with `$w` repeats
// for w = 0 ..= NWR, a line with `$y` for y = 0 .. NWR (`$z` = y + 1). The kernels call
// blk_v4 with literal v, so every index into a BW array is a constant after inlining and the
// arrays stay in registers (llvmpipe moves arrays indexed at run time to per-lane stack
// memory, which costs a loop over the lanes per access).
//
// Params reuse (mm_words.wgsl): `words` is the bytes of a row for these formats.

// Blocks per step and bytes per block (Format::block_bytes), written by the host for the
// kernel's format, then bytes and 16-byte words per step.
const G: u32 = $gu;
const BB: u32 = $bbu;
override SB: u32 = G * BB;
override NWR: u32 = (SB + 15u) / 16u;
// Every step of every row starts on a 16-byte boundary (the host sets it when the row bytes
// and SB are multiples of 16: Q4_K and Q5_K always, the 32-value formats when cols % 256 == 0).
override ALIGNED: bool = false;

// A step's bytes: u32 i of the step is component i % 4 of element i / 4.
alias BW = array<vec4<u32>, 18>;

// Blocks of the current step that lie inside the row (32-value formats: the last step of a
// row may hold fewer than 8; the scales of the others read as 0, so their garbage bytes,
// which may decode to inf or NaN, add nothing).
var<private> blk_n: u32;

const SH8 = vec4<u32>(0u, 8u, 16u, 24u);

// The weights again as u32s (the same buffers): a chunk's bytes need not fill its last 16-byte
// word, which w and w2 cannot read (the length of an array<vec4<u32>> rounds down).
@group(0) @binding(9) var<storage, read> wt: array<u32>;
@group(0) @binding(10) var<storage, read> wt2: array<u32>;

fn tail_word(i: u32, up: bool) -> vec4<u32> {
    let b = 4u * i;
    if up {
        let n = arrayLength(&wt2);
        return vec4<u32>(select(0u, wt2[b], b < n), select(0u, wt2[b + 1u], b + 1u < n), select(0u, wt2[b + 2u], b + 2u < n), select(0u, wt2[b + 3u], b + 3u < n));
    }
    let n = arrayLength(&wt);
    return vec4<u32>(select(0u, wt[b], b < n), select(0u, wt[b + 1u], b + 1u < n), select(0u, wt[b + 2u], b + 2u < n), select(0u, wt[b + 3u], b + 3u < n));
}

// 16-byte word i of w (w2 when `up`).
fn ld(i: u32, up: bool) -> vec4<u32> {
    if up {
        if i < arrayLength(&w2) {
            return w2[i];
        }
    } else if i < arrayLength(&w) {
        return w[i];
    }
    return tail_word(i, up);
}

// Bytes s .. s + 16 of the 32 bytes lo ‖ hi (s even, 0..14).
fn realign(lo: vec4<u32>, hi: vec4<u32>, s: u32) -> vec4<u32> {
    let a = s >> 2u;
    let s1 = vec4<u32>(lo.yzw, hi.x);
    let s2 = vec4<u32>(lo.zw, hi.xy);
    let s3 = vec4<u32>(lo.w, hi.xyz);
    let v = select(select(lo, s1, a == 1u), select(s2, s3, a == 3u), a >= 2u);
    let n = select(select(s1, s2, a == 1u), select(s3, hi, a == 3u), a >= 2u);
    return select(v, (v >> vec4<u32>(16u)) | (n << vec4<u32>(16u)), (s & 2u) != 0u);
}

// The step starting at byte `base` of w (w2 when `up`) into b.
fn blk_fill(b: ptr<private, BW>, base: u32, up: bool) {
    let k0 = base >> 4u;
    let s = select(base & 15u, 0u, ALIGNED);
    let more = !ALIGNED && s + SB > 16u * NWR;
    var wd_$w = vec4<u32>(0u); if $wu < NWR || more { wd_$w = ld(k0 + $wu, up); }
    (*b)[$yu] = select(realign(wd_$y, wd_$z, s), wd_$y, ALIGNED);
}

// u32 i of the step.
fn bu(b: ptr<private, BW>, i: u32) -> u32 {
    return (*b)[i >> 2u][i & 3u];
}

// Little-endian u32 at even byte o (o % 4 == 2: halves of two u32).
fn bu16(b: ptr<private, BW>, o: u32) -> u32 {
    let lo = bu(b, o >> 2u);
    if (o & 2u) == 0u {
        return lo;
    }
    return (lo >> 16u) | (bu(b, (o >> 2u) + 1u) << 16u);
}

fn bbyte(b: ptr<private, BW>, o: u32) -> u32 {
    return (bu(b, o >> 2u) >> ((o & 3u) * 8u)) & 0xffu;
}

// f16 at even byte o, widened (exactly).
fn bh(b: ptr<private, BW>, o: u32) -> f32 {
    return unpack2x16float(bu(b, o >> 2u) >> ((o & 2u) * 8u)).x;
}

// The f16 scale at byte o of block k of a 32-value format's step (0 past the row's end).
fn bd(b: ptr<private, BW>, o: u32, k: u32) -> f32 {
    return select(0.0, bh(b, o), k < blk_n);
}

fn i8x4(u: u32) -> vec4<f32> {
    return vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(u) << (vec4<u32>(24u) - SH8)) >> vec4<u32>(24u));
}

// Fields of 4 consecutive values packed `bits` wide at shift `sh` of each byte of u.
fn ubits(u: u32, sh: u32, mask: u32) -> vec4<u32> {
    return (vec4<u32>(u) >> (SH8 + vec4<u32>(sh))) & vec4<u32>(mask);
}

fn f4(q: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(vec4<i32>(q));
}

// Values 4v .. 4v + 3 of the step in the kernel's format: the host names the function of
// that format here (one per format below; a `switch WDT` inlined at each of a kernel's 64
// call sites would cost lavapipe seconds of compilation per kernel before it folds away).
fn blk_v4(b: ptr<private, BW>, v: u32) -> vec4<f32> {
    return v4_$f(b, v);
}

// The formats' decodes (layouts in weights.wgsl and src/format/blocks.rs). 32-value formats:
// value vec4 v is values 4i .. 4i + 3 (i = v % 8) of block k = v / 8, whose quant bytes hold
// values c and c + 16 in their low and high nibbles. K-quants: values j .. j + 3, j = 4v.

// Q8_0: qs[j] · d
fn v4_q8_0(b: ptr<private, BW>, v: u32) -> vec4<f32> {
    let k = v >> 3u;
    return i8x4(bu16(b, k * 34u + 2u + 4u * (v & 7u))) * bd(b, k * 34u, k);
}

// Q4_0: d · (q − 8)
fn v4_q4_0(b: ptr<private, BW>, v: u32) -> vec4<f32> {
    let k = v >> 3u;
    let i = v & 7u;
    let q = ubits(bu16(b, k * 18u + 2u + 4u * (i & 3u)), 4u * (i >> 2u), 0xfu);
    return bd(b, k * 18u, k) * (f4(q) - vec4<f32>(8.0));
}

// Q4_1: d · q + m
fn v4_q4_1(b: ptr<private, BW>, v: u32) -> vec4<f32> {
    let k = v >> 3u;
    let i = v & 7u;
    let q = ubits(bu16(b, k * 20u + 4u + 4u * (i & 3u)), 4u * (i >> 2u), 0xfu);
    return bd(b, k * 20u, k) * f4(q) + bd(b, k * 20u + 2u, k);
}

// Q5_0: d · ((q | h << 4) − 16), h = bit 4i + c of qh
fn v4_q5_0(b: ptr<private, BW>, v: u32) -> vec4<f32> {
    let k = v >> 3u;
    let i = v & 7u;
    let h = (vec4<u32>(bu16(b, k * 22u + 2u)) >> (vec4<u32>(4u * i) + vec4<u32>(0u, 1u, 2u, 3u))) & vec4<u32>(1u);
    let q = ubits(bu16(b, k * 22u + 6u + 4u * (i & 3u)), 4u * (i >> 2u), 0xfu) | (h << vec4<u32>(4u));
    return bd(b, k * 22u, k) * (f4(q) - vec4<f32>(16.0));
}

// Q5_1: d · (q | h << 4) + m
fn v4_q5_1(b: ptr<private, BW>, v: u32) -> vec4<f32> {
    let k = v >> 3u;
    let i = v & 7u;
    let h = (vec4<u32>(bu16(b, k * 24u + 4u)) >> (vec4<u32>(4u * i) + vec4<u32>(0u, 1u, 2u, 3u))) & vec4<u32>(1u);
    let q = ubits(bu16(b, k * 24u + 8u + 4u * (i & 3u)), 4u * (i >> 2u), 0xfu) | (h << vec4<u32>(4u));
    return bd(b, k * 24u, k) * f4(q) + bd(b, k * 24u + 2u, k);
}

// Q2_K: (d · (sc & 15)) · q − dmin · (sc >> 4), sc = scales[j / 16]
fn v4_q2_k(b: ptr<private, BW>, v: u32) -> vec4<f32> {
    let j = 4u * v;
    let sc = bbyte(b, j >> 4u);
    let dl = bh(b, 80u) * f32(sc & 0xfu);
    let ml = bh(b, 82u) * f32(sc >> 4u);
    let q = ubits(bu16(b, 16u + (j >> 7u) * 32u + (j & 31u)), ((j >> 5u) & 3u) * 2u, 3u);
    return dl * f4(q) - vec4<f32>(ml);
}

// Q3_K: (d · (s − 32)) · (q − 4·!h)
fn v4_q3_k(b: ptr<private, BW>, v: u32) -> vec4<f32> {
    let j = 4u * v;
    let is = j >> 4u;
    let lo = (bbyte(b, 96u + (is & 7u)) >> ((is >> 3u) * 4u)) & 0xfu;
    let hi = (bbyte(b, 104u + (is & 3u)) >> ((is >> 2u) * 2u)) & 3u;
    let dl = bh(b, 108u) * f32(i32(lo | (hi << 4u)) - 32);
    let h = ubits(bu16(b, j & 31u), j >> 5u, 1u);
    let q = ubits(bu16(b, 32u + (j >> 7u) * 32u + (j & 31u)), ((j >> 5u) & 3u) * 2u, 3u);
    return dl * vec4<f32>(vec4<i32>(q) - vec4<i32>((h ^ vec4<u32>(1u)) << vec4<u32>(2u)));
}

// Q4_K: (d · sc) · q − dmin · m, 6-bit (sc, m) of sub-block j / 32
fn v4_q4_k(b: ptr<private, BW>, v: u32) -> vec4<f32> {
    let j = 4u * v;
    let sm = scale_min_k4_b(b, j >> 5u);
    let q = ubits(bu16(b, 16u + (j >> 6u) * 32u + (j & 31u)), ((j >> 5u) & 1u) * 4u, 0xfu);
    return (bh(b, 0u) * f32(sm.x)) * f4(q) - vec4<f32>(bh(b, 2u) * f32(sm.y));
}

// Q5_K: as Q4_K with q | h << 4, h = bit j / 32 of qh[j % 32]
fn v4_q5_k(b: ptr<private, BW>, v: u32) -> vec4<f32> {
    let j = 4u * v;
    let sm = scale_min_k4_b(b, j >> 5u);
    let h = ubits(bu16(b, 16u + (j & 31u)), j >> 5u, 1u);
    let q = ubits(bu16(b, 48u + (j >> 6u) * 32u + (j & 31u)), ((j >> 5u) & 1u) * 4u, 0xfu) | (h << vec4<u32>(4u));
    return (bh(b, 0u) * f32(sm.x)) * f4(q) - vec4<f32>(bh(b, 2u) * f32(sm.y));
}

// Q6_K: (d · scales[j / 16]) · ((ql | qh << 4) − 32)
fn v4_q6_k(b: ptr<private, BW>, v: u32) -> vec4<f32> {
    let j = 4u * v;
    let sc = i32(bbyte(b, 192u + (j >> 4u)) << 24u) >> 24u;
    let dl = bh(b, 208u) * f32(sc);
    let lo = ubits(bu16(b, (j >> 7u) * 64u + (j & 63u)), ((j >> 6u) & 1u) * 4u, 0xfu);
    let hi = ubits(bu16(b, 128u + (j >> 7u) * 32u + (j & 31u)), ((j >> 5u) & 3u) * 2u, 3u);
    return dl * (f4(lo | (hi << vec4<u32>(4u))) - vec4<f32>(32.0));
}

// The 6-bit (scale, min) of sub-block i of Q4_K/Q5_K's 12 bytes at byte 4 (weights.wgsl's
// scale_min_k4).
fn scale_min_k4_b(b: ptr<private, BW>, i: u32) -> vec2<u32> {
    if i < 4u {
        return vec2<u32>(bbyte(b, 4u + i) & 63u, bbyte(b, 8u + i) & 63u);
    }
    let m = bbyte(b, 8u + i);
    return vec2<u32>((m & 0xfu) | ((bbyte(b, i) >> 6u) << 4u), (m >> 4u) | ((bbyte(b, 4u + i) >> 6u) << 4u));
}

// The i-quants (layouts in weights.wgsl and src/format/iquants.rs; tables in iq_tables.wgsl).
// Values j .. j + 3 (j = 4v) share one 8-value group: its scale, grid row and sign byte; IQ4_NL
// steps are 8 blocks of 32 as Q4_0's.

// ±1 for bits 0..3 of a sign byte (set = negative).
fn sgn4(bits: u32) -> vec4<f32> {
    return select(vec4<f32>(1.0), vec4<f32>(-1.0), ((vec4<u32>(bits) >> vec4<u32>(0u, 1u, 2u, 3u)) & vec4<u32>(1u)) != vec4<u32>(0u));
}

// The 4-bit scale of 16-value group g from 8 bytes at o (low nibble first).
fn nib_b(b: ptr<private, BW>, o: u32, g: u32) -> f32 {
    return f32((bbyte(b, o + (g >> 1u)) >> ((g & 1u) * 4u)) & 15u);
}

fn kv4(q: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(kvalue(q.x), kvalue(q.y), kvalue(q.z), kvalue(q.w));
}

// IQ2_XXS: ((d · (½ + s) · ¼) · grid) · ±1
fn v4_iq2_xxs(b: ptr<private, BW>, v: u32) -> vec4<f32> {
    let j = 4u * v;
    let ib = j >> 5u;
    let l = (j >> 3u) & 3u;
    let aux0 = bu16(b, 2u + 8u * ib);
    let aux1 = bu16(b, 6u + 8u * ib);
    let db = bh(b, 0u) * (0.5 + f32(aux1 >> 28u)) * 0.25;
    let g = ubits(grid_word(IQ2XXS_AT, (aux0 >> (8u * l)) & 0xffu, (j >> 2u) & 1u), 0u, 0xffu);
    return db * f4(g) * sgn4(ksigns((aux1 >> (7u * l)) & 127u) >> (j & 4u));
}

// IQ2_XS: as IQ2_XXS with a 9-bit row and 7 sign bits per u16, a nibble scale per 16 values
fn v4_iq2_xs(b: ptr<private, BW>, v: u32) -> vec4<f32> {
    let j = 4u * v;
    let q = bu16(b, 2u + 2u * (j >> 3u)) & 0xffffu;
    let db = bh(b, 0u) * (0.5 + nib_b(b, 66u, j >> 4u)) * 0.25;
    let g = ubits(grid_word(IQ2XS_AT, q & 511u, (j >> 2u) & 1u), 0u, 0xffu);
    return db * f4(g) * sgn4(ksigns(q >> 9u) >> (j & 4u));
}

// IQ2_S: 10-bit rows (qs | 2 bits of qh), a stored sign byte per 8 values
fn v4_iq2_s(b: ptr<private, BW>, v: u32) -> vec4<f32> {
    let j = 4u * v;
    let k = j >> 3u;
    let hi = (bbyte(b, 66u + (k >> 2u)) >> (2u * (k & 3u))) & 3u;
    let db = bh(b, 0u) * (0.5 + nib_b(b, 74u, j >> 4u)) * 0.25;
    let g = ubits(grid_word(IQ2S_AT, bbyte(b, 2u + k) | (hi << 8u), (j >> 2u) & 1u), 0u, 0xffu);
    return db * f4(g) * sgn4(bbyte(b, 34u + k) >> (j & 4u));
}

// IQ3_XXS: ((d · (½ + s) · ½) · grid) · ±1, a 4-value row per byte
fn v4_iq3_xxs(b: ptr<private, BW>, v: u32) -> vec4<f32> {
    let j = 4u * v;
    let aux = bu16(b, 66u + 4u * (j >> 5u));
    let db = bh(b, 0u) * (0.5 + f32(aux >> 28u)) * 0.5;
    let g = ubits(iq_tab[IQ3XXS_AT + bbyte(b, 2u + (j >> 2u))], 0u, 0xffu);
    return db * f4(g) * sgn4(ksigns((aux >> (7u * ((j >> 3u) & 3u))) & 127u) >> (j & 4u));
}

// IQ3_S: ((d · (1 + 2s)) · grid) · ±1, 9-bit rows
fn v4_iq3_s(b: ptr<private, BW>, v: u32) -> vec4<f32> {
    let j = 4u * v;
    let ib = j >> 5u;
    let k = j >> 2u;
    let s = (bbyte(b, 106u + (ib >> 1u)) >> (4u * (ib & 1u))) & 15u;
    let db = bh(b, 0u) * f32(1u + 2u * s);
    let row = bbyte(b, 2u + k) | (((bbyte(b, 66u + (k >> 3u)) >> (k & 7u)) & 1u) << 8u);
    let g = ubits(iq_tab[IQ3S_AT + row], 0u, 0xffu);
    return db * f4(g) * sgn4(bbyte(b, 74u + (k >> 1u)) >> (j & 4u));
}

// IQ1 grid values (i8) of row `row` plus ±⅛, times dl.
fn iq1_v4(dl: f32, row: u32, h: u32, neg: bool) -> vec4<f32> {
    return dl * (i8x4(grid_word(IQ1S_AT, row, h)) + vec4<f32>(select(0.125, -0.125, neg)));
}

// IQ1_S: (d · (2s + 1)) · (grid ± ⅛)
fn v4_iq1_s(b: ptr<private, BW>, v: u32) -> vec4<f32> {
    let j = 4u * v;
    let ib = j >> 5u;
    let l = (j >> 3u) & 3u;
    let qh = bu16(b, 34u + 2u * ib) & 0xffffu;
    let dl = bh(b, 0u) * f32(2u * ((qh >> 12u) & 7u) + 1u);
    let row = bbyte(b, 2u + 4u * ib + l) | (((qh >> (3u * l)) & 7u) << 8u);
    return iq1_v4(dl, row, (j >> 2u) & 1u, (qh & 0x8000u) != 0u);
}

// IQ1_M: as IQ1_S with a 3-bit scale per 16 values and d in the scale words' top nibbles
fn v4_iq1_m(b: ptr<private, BW>, v: u32) -> vec4<f32> {
    let j = 4u * v;
    let u0 = bu16(b, 48u);
    let u1 = bu16(b, 52u);
    let dbits = ((u0 >> 12u) & 0xfu) | ((u0 >> 24u) & 0xf0u) | ((u1 >> 4u) & 0xf00u) | ((u1 >> 16u) & 0xf000u);
    let g = j >> 4u;
    let sw = select(u0, u1, g >= 8u) >> (16u * ((g >> 2u) & 1u));
    let dl = unpack2x16float(dbits).x * f32(2u * ((sw >> (3u * (g & 3u))) & 7u) + 1u);
    let k = j >> 3u;
    let nib = (bbyte(b, 32u + (k >> 1u)) >> (4u * (k & 1u))) & 15u;
    return iq1_v4(dl, bbyte(b, k) | ((nib & 7u) << 8u), (j >> 2u) & 1u, (nib & 8u) != 0u);
}

// IQ4_NL: d · KVALUES[q], blocks of 32 as Q4_0
fn v4_iq4_nl(b: ptr<private, BW>, v: u32) -> vec4<f32> {
    let k = v >> 3u;
    let i = v & 7u;
    let q = ubits(bu16(b, k * 18u + 2u + 4u * (i & 3u)), 4u * (i >> 2u), 0xfu);
    return bd(b, k * 18u, k) * kv4(q);
}

// IQ4_XS: (d · (s − 32)) · KVALUES[q], 6-bit s per 32 values
fn v4_iq4_xs(b: ptr<private, BW>, v: u32) -> vec4<f32> {
    let j = 4u * v;
    let ib = j >> 5u;
    let lo = (bbyte(b, 4u + (ib >> 1u)) >> (4u * (ib & 1u))) & 15u;
    let hi = (bu16(b, 2u) >> (2u * ib)) & 3u;
    let dl = bh(b, 0u) * f32(i32(lo | (hi << 4u)) - 32);
    let jj = j & 31u;
    let q = ubits(bu16(b, 8u + 16u * ib + (jj & 15u)), 4u * (jj >> 4u), 0xfu);
    return dl * kv4(q);
}
