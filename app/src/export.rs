//! The conversation's routing trace written out as JSON (one object per position) or CSV
//! (one row per position × layer × rank), for analysis outside the app.

use std::path::Path;

use serde::Serialize;

use crate::routing::{PositionRoute, RoutingShape, Trace};

#[derive(Serialize)]
struct JsonTrace<'a> {
    model: &'a str,
    shape: &'a RoutingShape,
    positions: &'a [PositionRoute],
}

pub fn to_json(trace: &Trace, model: &str) -> Result<String, String> {
    serde_json::to_string_pretty(&JsonTrace { model, shape: &trace.shape, positions: &trace.positions }).map_err(|e| format!("cannot encode the trace as JSON: {e}"))
}

pub const CSV_HEADER: &str = "position,token_id,token_text,layer,rank,expert,weight";

pub fn to_csv(trace: &Trace) -> String {
    let mut out = String::from(CSV_HEADER);
    out.push('\n');
    for p in &trace.positions {
        let text = csv_field(&p.text);
        for l in &p.layers {
            for (rank, (e, w)) in l.experts.iter().zip(&l.weights).enumerate() {
                out.push_str(&format!("{},{},{},{},{},{},{}\n", p.position, p.token, text, l.layer, rank, e, w));
            }
        }
    }
    out
}

/// RFC 4180 quoting: fields with a comma, quote or line break are quoted, quotes doubled.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) || s.starts_with(' ') || s.ends_with(' ') {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub enum Format {
    Json,
    Csv,
}

/// Write the trace to `path`; the message says what was written or why not.
pub fn write(trace: &Trace, model: &str, path: &str, format: Format) -> Result<String, String> {
    let path = path.trim();
    if path.is_empty() {
        return Err("type a file path to export to".into());
    }
    if trace.positions.is_empty() {
        return Err("nothing to export yet: the conversation has no routing".into());
    }
    let text = match format {
        Format::Json => to_json(trace, model)?,
        Format::Csv => to_csv(trace),
    };
    std::fs::write(Path::new(path), text).map_err(|e| format!("cannot write {path}: {e}"))?;
    Ok(format!("wrote the routing of {} positions to {path}", trace.positions.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::RoutingShape;

    #[test]
    fn csv_rows_and_quoting() {
        let shape = RoutingShape { layers: vec![1], n_experts: 4, n_group: 1, topk_group: 1, top_k: 2 };
        let mut t = Trace::synthetic(shape, 2, 3);
        t.positions[0].text = "a,\"b\"\n".into();
        let csv = to_csv(&t);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], CSV_HEADER);
        assert!(csv.contains("\"a,\"\"b\"\"\n\""), "{csv}");
        assert_eq!(csv.matches(",1,0,").count() + csv.matches(",1,1,").count(), 4);
        let json: serde_json::Value = serde_json::from_str(&to_json(&t, "m").unwrap()).unwrap();
        assert_eq!(json["positions"].as_array().unwrap().len(), 2);
        assert_eq!(json["shape"]["n_experts"], 4);
    }

    #[test]
    fn errors_are_messages() {
        let t = Trace::new(RoutingShape { layers: vec![1], n_experts: 4, n_group: 1, topk_group: 1, top_k: 2 });
        assert!(write(&t, "m", "x.json", Format::Json).unwrap_err().contains("nothing to export"));
        assert!(write(&t, "m", " ", Format::Csv).unwrap_err().contains("file path"));
    }
}
