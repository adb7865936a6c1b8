//! Sampling settings: what a user (CLI flags, the app, generation_config.json) asks for.

use crate::ops::sample::Filter;

/// Sampling settings as a user gives them, validated by [`SampleParams::validate`] and turned
/// into the kernel's [`Filter`] by [`SampleParams::filter`], once, at the session boundary.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SampleParams {
    /// 0 = greedy
    pub temperature: f32,
    /// 0 = off
    pub top_k: usize,
    /// 1 = off; in (0, 1]
    pub top_p: f32,
    /// 0 = off; in [0, 1)
    pub min_p: f32,
    /// 1 = off; > 0
    pub repeat_penalty: f32,
}

impl Default for SampleParams {
    fn default() -> Self {
        SampleParams { temperature: 1.0, top_k: 0, top_p: 1.0, min_p: 0.0, repeat_penalty: 1.0 }
    }
}

impl SampleParams {
    pub fn greedy() -> Self {
        SampleParams { temperature: 0.0, ..Default::default() }
    }

    pub fn validate(&self) -> Result<(), String> {
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return Err(format!("temperature {} must be a finite number ≥ 0 (0 = greedy)", self.temperature));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(format!("top-p {} must be in (0, 1] (1 = off)", self.top_p));
        }
        if !(self.min_p >= 0.0 && self.min_p < 1.0) {
            return Err(format!("min-p {} must be in [0, 1) (0 = off)", self.min_p));
        }
        if !(self.repeat_penalty > 0.0 && self.repeat_penalty.is_finite()) {
            return Err(format!("repeat penalty {} must be a finite number > 0 (1 = off)", self.repeat_penalty));
        }
        Ok(())
    }

    /// The validated kernel arguments.
    pub fn filter(&self) -> Result<Filter, String> {
        self.validate()?;
        Ok(Filter { temperature: self.temperature, top_k: self.top_k, top_p: self.top_p, min_p: self.min_p, repeat_penalty: self.repeat_penalty })
    }
}
