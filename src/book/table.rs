//! The table an experiment fills as it runs (columns, rows of JSON values,
//! a summary), also written as CSV to a file row by row, so a run stopped
//! early keeps its rows so far. `experiment` and `train_convnet` fill it.
//!
//! May import: error, files.

use serde_json::Value;

use crate::core::error::{Error, Result};

pub type Table = (Vec<&'static str>, Vec<Vec<Value>>, Value);

/// The table an experiment fills, row by row, also written as CSV to the
/// sink's file as it goes (a run stopped early keeps its rows so far).
pub struct Rows {
    columns: Vec<&'static str>,
    rows: Vec<Vec<Value>>,
    file: Option<(std::fs::File, std::path::PathBuf)>,
}

impl Rows {
    pub fn new(sink: Option<&std::path::Path>, columns: &[&'static str]) -> Result<Self> {
        let file = match sink {
            Some(path) => {
                // Never opened for writing unless a file: a FIFO would block.
                crate::core::files::check_writable(path)
                    .map_err(|e| Error::io(path)(std::io::Error::other(e)))?;
                let header = columns.join(",");
                if crate::core::files::holds_other_than(path, &header) {
                    return Err(Error::Usage(format!(
                        "{} holds a file whose first line is not this table's header ({header}): remove it, or write elsewhere",
                        path.display()
                    )));
                }
                let mut f = std::fs::File::create(path).map_err(Error::io(path))?;
                use std::io::Write;
                writeln!(f, "{}", columns.join(",")).map_err(Error::io(path))?;
                Some((f, path.to_path_buf()))
            }
            None => None,
        };
        Ok(Rows {
            columns: columns.to_vec(),
            rows: vec![],
            file,
        })
    }

    pub fn push(&mut self, row: Vec<Value>) -> Result<()> {
        if let Some((f, path)) = &mut self.file {
            use std::io::Write;
            writeln!(f, "{}", csv_line(&row))
                .and_then(|_| f.flush())
                .map_err(Error::io(path))?;
        }
        self.rows.push(row);
        Ok(())
    }

    pub fn table(self, summary: Value) -> Table {
        (self.columns, self.rows, summary)
    }
}

pub fn csv_line(row: &[Value]) -> String {
    row.iter()
        .map(|v| match v {
            Value::String(t) if t.contains([',', '"', '\n']) => {
                format!("\"{}\"", t.replace('"', "\"\""))
            }
            Value::String(t) => t.clone(),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}
