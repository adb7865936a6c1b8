// The lookup tables of GGUF's i-quants (WDT 14..22, see formats.wgsl), for the kernels that
// decode them: weights.wgsl's per-element gathers and blocks_words.wgsl's steps. The host
// binds one read-only storage buffer, `Kernels::iq_tables` (src/format/iquants.rs
// `table_words`, from gguf-py's tables): each 8-value grid row as two u32 (values 0..4 in
// the first, value i in byte i % 4), each 4-value IQ3 row as one u32, IQ4's 16 levels as i32,
// at the offsets below (checked against `iquants::TABLE_AT` by a unit test).
//
// Why a storage buffer and not WGSL `const` arrays: the grid is indexed by weight bytes, at
// run time, and naga writes a run-time index into a `const` array as a copy of the whole
// array into a function-local variable (SPIR-V OpVariable Function; MSL and HLSL locals too),
// so IQ1_S's 16 KiB grid would be copied per call, into per-lane stack memory on lavapipe.
// A storage buffer is a plain load everywhere, divergent indices included (a uniform buffer
// would fit, 34 KiB, but divergent indices serialize on GPUs' constant caches). The cost is
// one storage binding: the generic matmul and mla_absorb then use 7, within WebGPU's default
// of 8 per stage (`ops::needs_of` checks it); the fast block kernels bind it only for the
// i-quants (the other formats' entry points never reach it, so their layouts lack it).
@group(0) @binding(11) var<storage, read> iq_tab: array<u32>;

const IQ1S_AT: u32 = 0u;
const IQ2S_AT: u32 = 4096u;
const IQ2XS_AT: u32 = 6144u;
const IQ2XXS_AT: u32 = 7168u;
const IQ3S_AT: u32 = 7680u;
const IQ3XXS_AT: u32 = 8192u;
const KVALUES_AT: u32 = 8448u;

// gguf-py's KSIGNS_IQ2XS[i]: the 7 stored sign bits i and their parity as bit 7 (every
// pattern has an even number of negatives).
fn ksigns(i: u32) -> u32 {
    return i | ((countOneBits(i) & 1u) << 7u);
}

// ±1 for bit i of a sign byte (set = negative).
fn iq_sign(bits: u32, i: u32) -> f32 {
    return select(1.0, -1.0, ((bits >> i) & 1u) != 0u);
}

// The u32 of 8-value grid row `row` of the table at `at` that holds values 4h .. 4h + 3.
fn grid_word(at: u32, row: u32, h: u32) -> u32 {
    return iq_tab[at + 2u * row + h];
}

// IQ4_NL/IQ4_XS's level q (0..16).
fn kvalue(q: u32) -> f32 {
    return f32(bitcast<i32>(iq_tab[KVALUES_AT + q]));
}
