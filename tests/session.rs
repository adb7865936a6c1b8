//! The library's Session: events, and follow-up turns that reuse the cached prefix yet give
//! exactly what a fresh session computing the whole conversation gives.

mod common;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use deepseek_wgpu::chat::{ChatTokenizer, GenerationConfig, TextKind};
use deepseek_wgpu::gpu::{Gpu, GpuOptions};
use deepseek_wgpu::model::{LoadOptions, Model};
use deepseek_wgpu::sampling::SampleParams;
use deepseek_wgpu::session::{Event, Session, Settings, StopReason};

fn session() -> Session {
    let dir = common::fixture("chat_tiny");
    let gpu = Arc::new(Gpu::new(&GpuOptions::default()).expect("GPU adapter"));
    let model = Arc::new(Model::load(gpu, &dir, &LoadOptions { max_chunk: 64, max_ctx: 512, ..Default::default() }, &mut |_| {}).unwrap());
    let tok = Arc::new(ChatTokenizer::load(&dir, model.cfg.vocab).unwrap());
    Session::new(model, tok, GenerationConfig::load(&dir).unwrap(), 512).unwrap()
}

fn greedy(n: usize) -> Settings {
    Settings { sample: SampleParams::greedy(), max_tokens: n, ..Settings::default() }
}

#[test]
fn follow_up_turn_reuses_the_cache_and_matches_a_fresh_session() {
    let no = AtomicBool::new(false);
    let mut a = session();
    a.set_system("Be brief.");
    let r1 = a.chat("first question", &greedy(9), &no, &mut |_| {}).unwrap();
    assert_eq!(r1.stats.reused_tokens, 0);
    let r2 = a.chat("second question", &greedy(9), &no, &mut |_| {}).unwrap();
    assert!(r2.stats.reused_tokens > 10, "reused {}", r2.stats.reused_tokens);

    let mut b = session();
    b.messages = a.messages[..a.messages.len() - 1].to_vec();
    let fresh = b.reply(&greedy(9), &no, &mut |_| {}).unwrap();
    assert_eq!(fresh.stats.reused_tokens, 0);
    assert_eq!(fresh.ids, r2.ids, "reusing the cached prefix must not change the reply");
}

#[test]
fn events_stream_text_routing_stats_and_done() {
    let no = AtomicBool::new(false);
    let mut s = session();
    let mut events = Vec::new();
    let r = s.chat("hello", &greedy(7), &no, &mut |e| events.push(e.clone())).unwrap();
    let routing: Vec<usize> = events.iter().filter_map(|e| if let Event::Routing { position, .. } = e { Some(*position) } else { None }).collect();
    assert_eq!(routing, (0..r.prompt_ids.len() + r.ids.len() - 1).collect::<Vec<_>>(), "one routing event per position fed, in order");
    let k = s.model.top_k();
    for e in &events {
        if let Event::Routing { layers, .. } = e {
            assert_eq!(layers.len(), s.model.moe_layers().len());
            assert!(layers.iter().all(|l| l.experts.len() == k && l.weights.len() == k));
        }
    }
    let text: String = events.iter().filter_map(|e| if let Event::Text { text, .. } = e { Some(text.as_str()) } else { None }).collect();
    assert_eq!(text.len(), r.reasoning.len() + r.answer.len());
    assert!(events.iter().any(|e| matches!(e, Event::Text { kind: TextKind::Reasoning, .. })) || r.reasoning.is_empty());
    assert!(matches!(events[events.len() - 2], Event::Stats(_)));
    assert!(matches!(events.last(), Some(Event::Done(StopReason::MaxTokens))));
}

#[test]
fn cancel_flag_stops_between_tokens() {
    let cancel = AtomicBool::new(true);
    let mut s = session();
    let r = s.chat("hello", &greedy(50), &cancel, &mut |_| {}).unwrap();
    assert_eq!(r.stop, StopReason::Cancelled);
    assert_eq!(r.ids.len(), 1, "cancel is checked after each token");
}

#[test]
fn a_lost_device_is_an_error_not_a_crash() {
    let no = AtomicBool::new(false);
    let mut s = session();
    s.chat("hello", &greedy(3), &no, &mut |_| {}).unwrap();
    s.model.gpu.device.destroy();
    let err = s.chat("again", &greedy(3), &no, &mut |_| {}).err().expect("generation on a destroyed device must fail");
    let msg = err.to_string();
    assert!(msg.contains("GPU"), "{msg}");
}

#[test]
fn run_time_errors_are_typed_with_their_numbers() {
    use deepseek_wgpu::model::{LoadError, LogitsMode};
    let s = session();
    let m = s.model.clone();
    let mut cache = m.new_cache(8).unwrap();
    assert!(matches!(m.forward(&mut cache, &[], LogitsMode::None), Err(LoadError::NoIds)));
    let vocab = m.cfg.vocab;
    match m.forward(&mut cache, &[1, vocab as u32], LogitsMode::None) {
        Err(e @ LoadError::IdOutOfVocab { .. }) => assert!(e.to_string().contains(&vocab.to_string()), "{e}"),
        other => panic!("{:?}", other.map(|_| ())),
    }
    match m.forward(&mut cache, &[1; 9], LogitsMode::None) {
        Err(LoadError::ContextFull { cached: 0, new: 9, ctx: 8 }) => {}
        other => panic!("{:?}", other.map(|_| ())),
    }
}

#[test]
fn token_events_carry_their_text_and_kind() {
    let dir = deepseek_wgpu::default_model_dir().unwrap();
    let gpu = Arc::new(Gpu::new(&GpuOptions::default()).expect("GPU adapter"));
    let model = Arc::new(Model::load(gpu, &dir, &LoadOptions { max_ctx: 512, ..Default::default() }, &mut |_| {}).unwrap());
    let tok = Arc::new(ChatTokenizer::load(&dir, model.cfg.vocab).unwrap());
    let mut s = Session::new(model, tok, GenerationConfig::load(&dir).unwrap(), 512).unwrap();
    let no = AtomicBool::new(false);
    let mut tokens = Vec::new();
    let r = s.chat("What is 12 + 34?", &greedy(120), &no, &mut |e| {
        if let Event::Token { text, kind, .. } = e {
            tokens.push((text.clone(), *kind));
        }
    })
    .unwrap();
    assert_eq!(tokens.len(), r.ids.len());
    let all: String = tokens.iter().map(|t| t.0.as_str()).collect();
    assert_eq!(all, r.text, "the per-token texts add up to the reply");
    // tiny-r1's template opens <think>: every token up to and including </think> is reasoning,
    // every one after it answer.
    let close = tokens.iter().position(|t| t.0.contains("</think>")).expect("a </think> token");
    assert!(tokens[..=close].iter().all(|t| t.1 == TextKind::Reasoning), "{tokens:?}");
    assert!(close + 1 < tokens.len() && tokens[close + 1..].iter().all(|t| t.1 == TextKind::Answer), "{tokens:?}");
    assert_eq!(r.answer, "46");
}
