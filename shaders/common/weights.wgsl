// Element access for kernels that gather single weights (embed, matmul, mla_absorb), on top
// of formats.wgsl's decodes. A kernel that includes this file declares `w: array<u32>`
// (packed weights), `wscale` (f32 block scales; a 1-element dummy when unused) and
// `override WDT: u32` (the format, see formats.wgsl).

// Element `i` of the packed weight array, widened to f32 (without block scale).
fn w_raw(i: u32) -> f32 {
    switch WDT {
        case 1u: {
            let word = w[i >> 1u];
            return bitcast<f32>(select(word & 0xffff0000u, word << 16u, (i & 1u) == 0u));
        }
        case 2u: {
            let pair = unpack2x16float(w[i >> 1u]);
            return select(pair.y, pair.x, (i & 1u) == 0u);
        }
        case 3u: {
            return fp8_e4m3((w[i >> 2u] >> ((i & 3u) * 8u)) & 0xffu);
        }
        default: {
            return bitcast<f32>(w[i]);
        }
    }
}
