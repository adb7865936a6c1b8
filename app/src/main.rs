//! deepseek-wgpu desktop app. For now: a window that reads a checkpoint folder's config and
//! shows its shape; chat and the live routing views are the app's own issue.

use deepseek_wgpu::config::ModelConfig;
use eframe::egui;

#[derive(Default)]
struct App {
    model_dir: String,
    summary: Option<Result<String, String>>,
}

impl eframe::App for App {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        egui::Frame::central_panel(ui.style()).show(ui, |ui| {
            ui.heading("deepseek-wgpu");
            ui.horizontal(|ui| {
                ui.label("Model folder:");
                ui.text_edit_singleline(&mut self.model_dir);
                if ui.button("Open").clicked() {
                    self.summary = Some(
                        ModelConfig::load(std::path::Path::new(&self.model_dir))
                            .map(|c| format!("{:?}: hidden {}, {} layers, {} heads, vocab {}", c.family, c.hidden, c.n_layers, c.n_heads, c.vocab))
                            .map_err(|e| e.to_string()),
                    );
                }
            });
            match &self.summary {
                Some(Ok(s)) => {
                    ui.label(s);
                }
                Some(Err(e)) => {
                    ui.colored_label(egui::Color32::RED, e);
                }
                None => {}
            }
        });
    }
}

fn main() -> eframe::Result {
    let model_dir = std::env::args().nth(1).unwrap_or_default();
    eframe::run_native(
        "deepseek-wgpu",
        eframe::NativeOptions::default(),
        Box::new(move |_cc| Ok(Box::new(App { model_dir, summary: None }))),
    )
}
