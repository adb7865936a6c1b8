//! Sampling settings as the user types them. Fields are kept as text so that anything can be
//! typed and every problem gets a message naming the field, instead of a widget silently
//! clamping the value.

use deepseek_wgpu::sampling::SampleParams;
use deepseek_wgpu::session::Settings;
use eframe::egui;

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SettingsForm {
    pub temperature: String,
    pub top_p: String,
    pub top_k: String,
    pub min_p: String,
    pub repeat_penalty: String,
    pub max_tokens: String,
    /// empty: continue the session's random generator
    pub seed: String,
}

impl SettingsForm {
    pub fn from_settings(s: &Settings) -> Self {
        SettingsForm {
            temperature: fmt_f32(s.sample.temperature),
            top_p: fmt_f32(s.sample.top_p),
            top_k: s.sample.top_k.to_string(),
            min_p: fmt_f32(s.sample.min_p),
            repeat_penalty: fmt_f32(s.sample.repeat_penalty),
            max_tokens: s.max_tokens.to_string(),
            seed: s.seed.map(|x| x.to_string()).unwrap_or_default(),
        }
    }

    /// The settings, or one message per problem.
    pub fn parse(&self) -> Result<Settings, Vec<String>> {
        let mut errs = Vec::new();
        let mut f = |name: &str, text: &str, default: f32| -> f32 {
            text.trim().parse::<f32>().unwrap_or_else(|_| {
                errs.push(format!("{name}: {:?} is not a number", text.trim()));
                default
            })
        };
        let temperature = f("temperature", &self.temperature, 1.0);
        let top_p = f("top-p", &self.top_p, 1.0);
        let min_p = f("min-p", &self.min_p, 0.0);
        let repeat_penalty = f("repeat penalty", &self.repeat_penalty, 1.0);
        let top_k = match self.top_k.trim().parse::<usize>() {
            Ok(k) => k,
            Err(_) => {
                errs.push(format!("top-k: {:?} must be a whole number ≥ 0 (0 = off)", self.top_k.trim()));
                0
            }
        };
        let max_tokens = match self.max_tokens.trim().parse::<usize>() {
            Ok(n) if n >= 1 => n,
            _ => {
                errs.push(format!("max tokens: {:?} must be a whole number ≥ 1", self.max_tokens.trim()));
                1
            }
        };
        let seed = match self.seed.trim() {
            "" => None,
            s => match s.parse::<u64>() {
                Ok(x) => Some(x),
                Err(_) => {
                    errs.push(format!("seed: {s:?} must be empty (random) or a whole number ≥ 0"));
                    None
                }
            },
        };
        let sample = SampleParams { temperature, top_k, top_p, min_p, repeat_penalty };
        // Range checks come from the library so the app and the CLI say the same thing;
        // they only make sense once every field parsed.
        if errs.is_empty() {
            if let Err(e) = sample.validate() {
                errs.push(e);
            }
        }
        if errs.is_empty() {
            Ok(Settings { sample, seed, max_tokens, ..Settings::default() })
        } else {
            Err(errs)
        }
    }

    /// The form; returns the problems of the current values (empty when valid).
    pub fn ui(&mut self, ui: &mut egui::Ui) -> Vec<String> {
        egui::Grid::new("sampling").num_columns(2).spacing([8.0, 4.0]).show(ui, |ui| {
            field(ui, "Temperature", &mut self.temperature, "0 = greedy");
            field(ui, "Top-p", &mut self.top_p, "in (0, 1]; 1 = off");
            field(ui, "Top-k", &mut self.top_k, "0 = off");
            field(ui, "Min-p", &mut self.min_p, "in [0, 1); 0 = off");
            field(ui, "Repeat penalty", &mut self.repeat_penalty, "1 = off");
            field(ui, "Max tokens", &mut self.max_tokens, "most tokens per answer");
            field(ui, "Seed", &mut self.seed, "empty = random; a number gives the same text every time");
        });
        let errs = self.parse().err().unwrap_or_default();
        for e in &errs {
            ui.colored_label(ui.visuals().error_fg_color, e);
        }
        errs
    }
}

fn field(ui: &mut egui::Ui, name: &str, value: &mut String, hint: &str) {
    let label = ui.label(name).on_hover_text(hint);
    ui.add(egui::TextEdit::singleline(value).desired_width(90.0)).labelled_by(label.id).on_hover_text(hint);
    ui.end_row();
}

fn fmt_f32(v: f32) -> String {
    // Through f64 so 0.95 shows as 0.95, not 0.949999988.
    let s = format!("{}", (v as f64 * 1e6).round() / 1e6);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_messages() {
        let s = Settings { sample: SampleParams { temperature: 0.6, top_k: 0, top_p: 0.95, min_p: 0.0, repeat_penalty: 1.0 }, seed: Some(3), max_tokens: 64, stop: vec![], prefill_step: 0, constraint: None };
        let f = SettingsForm::from_settings(&s);
        assert_eq!(f.top_p, "0.95");
        let back = f.parse().unwrap();
        assert_eq!((back.sample, back.seed, back.max_tokens), (s.sample, s.seed, s.max_tokens));
        let bad = SettingsForm { temperature: "hot".into(), max_tokens: "0".into(), seed: "-1".into(), ..f.clone() };
        let errs = bad.parse().unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(errs[0].contains("temperature") && errs[0].contains("not a number"));
        let range = SettingsForm { top_p: "1.5".into(), ..f };
        assert!(range.parse().unwrap_err()[0].contains("top-p 1.5 must be in (0, 1]"));
    }
}
