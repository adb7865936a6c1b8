//! Exact-answer accuracy of the embedded arithmetic model, measured through the engine:
//! fresh problems phrased as in training (`What is 347 + 589?`, `What is 72 - 15?`,
//! `What is 123 * 7?`, `Which is larger, 347 or 374?`), greedy decoding through the chat
//! template, and the answer after `</think>` compared with the true result.

use std::sync::atomic::AtomicBool;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::sampling::SampleParams;
use crate::session::{Session, SessionError, Settings};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    Add,
    Sub,
    Mul,
    Cmp,
}

impl Task {
    pub fn parse(s: &str) -> Option<Task> {
        Some(match s {
            "add" => Task::Add,
            "sub" => Task::Sub,
            "mul" => Task::Mul,
            "cmp" => Task::Cmp,
            _ => return None,
        })
    }
}

/// A question and its exact answer.
pub fn problem(task: Task, rng: &mut impl Rng) -> (String, String) {
    // 2–3 digit operands, as the target asks.
    let mut operand = || if rng.random::<bool>() { rng.random_range(10..100) } else { rng.random_range(100..1000) } as i64;
    match task {
        Task::Add => {
            let (a, b) = (operand(), operand());
            (format!("What is {a} + {b}?"), (a + b).to_string())
        }
        Task::Sub => {
            let (a, b) = (operand(), operand());
            (format!("What is {a} - {b}?"), (a - b).to_string())
        }
        Task::Mul => {
            let a = operand();
            let b = rng.random_range(0..10);
            (format!("What is {a} * {b}?"), (a * b).to_string())
        }
        Task::Cmp => {
            let a = operand();
            let b = loop {
                let b = operand();
                if b != a {
                    break b;
                }
            };
            let larger = rng.random::<bool>();
            let ans = if larger == (a > b) { a } else { b };
            (format!("Which is {}, {a} or {b}?", if larger { "larger" } else { "smaller" }), ans.to_string())
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct TaskScore {
    pub task: Task,
    pub correct: usize,
    pub total: usize,
    pub accuracy: f64,
    /// up to five wrong answers: (question, expected, got)
    pub failures: Vec<(String, String, String)>,
}

/// `n` fresh problems per task, greedy, one conversation each.
pub fn evaluate(sess: &mut Session, tasks: &[Task], n: usize, seed: u64, progress: &mut dyn FnMut(usize, usize)) -> Result<Vec<TaskScore>, SessionError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let settings = Settings { sample: SampleParams::greedy(), seed: None, max_tokens: 160, stop: vec![] };
    let no = AtomicBool::new(false);
    let total = tasks.len() * n;
    let mut done = 0;
    let mut out = Vec::new();
    for &task in tasks {
        let mut s = TaskScore { task, correct: 0, total: n, accuracy: 0.0, failures: vec![] };
        for _ in 0..n {
            let (q, want) = problem(task, &mut rng);
            sess.reset();
            let r = sess.chat(&q, &settings, &no, &mut |_| {})?;
            let got = r.answer.trim().to_string();
            if got == want {
                s.correct += 1;
            } else if s.failures.len() < 5 {
                s.failures.push((q, want, got));
            }
            done += 1;
            progress(done, total);
        }
        s.accuracy = s.correct as f64 / n.max(1) as f64;
        out.push(s);
    }
    Ok(out)
}
