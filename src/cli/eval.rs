//! `eval`: exact-answer accuracy of the (default) arithmetic model on fresh problems,
//! through this engine.

use anyhow::{bail, Result};
use deepseek_wgpu::eval::{evaluate, Task};

use super::ModelArgs;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    m: ModelArgs,
    /// problems per task
    #[arg(long, default_value_t = 100)]
    n: usize,
    /// seed of the problem generator (training used Python's generator; any seed gives fresh problems)
    #[arg(long, default_value_t = 2026)]
    seed: u64,
    /// tasks to run: add, sub, mul, cmp (2–6 digit operands), ood (questions it must decline)
    #[arg(long, value_delimiter = ',', default_value = "add,sub,mul,cmp,ood")]
    tasks: Vec<String>,
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<()> {
    let tasks: Vec<Task> = a.tasks.iter().map(|t| Task::parse(t).ok_or_else(|| anyhow::anyhow!("unknown task {t:?} (add, sub, mul, cmp, ood)"))).collect::<Result<_>>()?;
    if a.n == 0 {
        bail!("--n must be at least 1");
    }
    let mut sess = super::session(&a.m)?;
    let bar = if a.m.quiet || a.json { indicatif::ProgressBar::hidden() } else { indicatif::ProgressBar::new((tasks.len() * a.n) as u64) };
    let scores = evaluate(&mut sess, &tasks, a.n, a.seed, &mut |d, _| bar.set_position(d as u64))?;
    bar.finish_and_clear();
    if a.json {
        println!("{}", serde_json::to_string(&scores)?);
        return Ok(());
    }
    println!("{:<6} {:>8} {:>8}", "task", "correct", "accuracy");
    for s in &scores {
        println!("{:<6} {:>4}/{:<4} {:>7.1}%", format!("{:?}", s.task).to_lowercase(), s.correct, s.total, 100.0 * s.accuracy);
        for (q, want, got) in &s.failures {
            println!("       wrong: {q} expected {want}, got {got:?}");
        }
    }
    Ok(())
}
