//! Exact-answer accuracy of the embedded arithmetic model, measured through the engine:
//! fresh problems phrased as in training (`What is 347 + 589?`, `What is 72 - 15?`,
//! `What is 123 * 7?`, `Which is larger, 347 or 374?`) with 2–6 digit operands, greedy
//! decoding through the chat template, and the answer after `</think>` compared with the true
//! result; plus questions it was not trained for (`Hello! Who are you?`), which it must
//! decline with its one sentence.

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
    /// out of domain: anything else, answered with [`DECLINE`]
    Ood,
}

/// What tiny-r1 answers to anything that is not one of its four question forms
/// (`OOD_REPLY` in tools/train_tiny.py).
pub const DECLINE: &str = "I am tiny-r1, a tiny demo: I only do +, -, * by one digit and compare numbers. Run a real model with --model.";

/// Held-out questions for [`Task::Ood`]: none of them is in the training generator's lists.
pub const OOD_QUESTIONS: &[&str] = &[
    "Hello! Who are you?",
    "What is the capital of Italy?",
    "Can you tell me a story?",
    "Write a limerick about a cat.",
    "How tall is Mount Everest?",
    "What is your favourite colour?",
    "Good night!",
    "Explain how a GPU works.",
    "What is 12 / 4?",
    "What is 123 * 45?",
    "Bonjour, comment ça va?",
    "What is the derivative of x^2?",
    "List three fruits.",
    "Who won the world cup?",
    "今天天气怎么样？",
    "Is 7 a prime number?",
    "Help me with my homework.",
    "Tell me about DeepSeek-R1.",
    "What is 5 + 6 + 7?",
    "Translate hello into German.",
];

impl Task {
    pub fn parse(s: &str) -> Option<Task> {
        Some(match s {
            "add" => Task::Add,
            "sub" => Task::Sub,
            "mul" => Task::Mul,
            "cmp" => Task::Cmp,
            "ood" => Task::Ood,
            _ => return None,
        })
    }
}

/// The `i`-th question of a task and its exact answer: fresh arithmetic from `rng`, or the
/// held-out out-of-domain questions in turn (n = 20 asks each once).
pub fn problem(task: Task, i: usize, rng: &mut impl Rng) -> (String, String) {
    // 2–6 digit operands, each length equally likely.
    let mut operand = || {
        let digits = rng.random_range(2..=6u32);
        rng.random_range(10i64.pow(digits - 1)..10i64.pow(digits))
    };
    match task {
        Task::Ood => (OOD_QUESTIONS[i % OOD_QUESTIONS.len()].to_string(), DECLINE.to_string()),
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
    let settings = Settings { sample: SampleParams::greedy(), max_tokens: 256, ..Settings::default() };
    let no = AtomicBool::new(false);
    let total = tasks.len() * n;
    let mut done = 0;
    let mut out = Vec::new();
    for &task in tasks {
        let mut s = TaskScore { task, correct: 0, total: n, accuracy: 0.0, failures: vec![] };
        for i in 0..n {
            let (q, want) = problem(task, i, &mut rng);
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
