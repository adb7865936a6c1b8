// Shared weight decode. WGSL has no bf16 or fp8 type, so weights stay packed in a
// `w: array<u32>` binding and are widened here. A kernel that includes this file declares
// `w` (packed weights), `wscale` (f32 block scales; a 1-element dummy when unused) and
// `override WDT: u32` (0 = F32, 1 = BF16, 2 = F16, 3 = F8_E4M3).

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

// E4M3 "fn": bias 7, no infinities, 0x7f/0xff are NaN.
fn fp8_e4m3(b: u32) -> f32 {
    let e = (b >> 3u) & 0xfu;
    let m = f32(b & 7u);
    var v: f32;
    if e == 0u {
        v = m * 0.001953125; // m/8 * 2^-6
    } else {
        v = (1.0 + m * 0.125) * exp2(f32(e) - 7.0);
    }
    if (b & 0x7fu) == 0x7fu {
        v = bitcast<f32>(0x7fc00000u);
    }
    return select(v, -v, (b & 0x80u) != 0u);
}
