//! A run's metrics as CSV, one row per epoch, flushed as the run goes (a
//! crash keeps the rows so far); `plot::read_metrics` reads them back.
//!
//! May import: epoch_loop (the epoch report), error, files, book_figures (the columns).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::core::error::{Error, Result};
use crate::core::files;
use crate::run::epoch_loop::EpochReport;

pub struct MetricsCsv {
    file: std::fs::File,
    path: PathBuf,
}

pub use crate::report::book_figures::METRICS_COLUMNS as COLUMNS;

impl MetricsCsv {
    /// The CSV's header line: [`COLUMNS`] joined.
    pub fn header() -> String {
        COLUMNS.join(",")
    }

    /// A new file with the header, or (continuing a run from iteration
    /// `resumed_at`) the existing one, given a header if it is empty, less
    /// its rows past that iteration (another continuation's, which this run
    /// replaces). A file that holds something else (a checkpoint, a
    /// picture, another table) is refused, not replaced or appended to.
    pub fn open(path: &Path, resumed_at: Option<usize>) -> Result<Self> {
        let append = resumed_at.is_some();
        if let Ok(meta) = std::fs::metadata(path)
            && !meta.is_file()
        {
            let why = format!("is {}, not a regular file", files::kind_of(&meta));
            return Err(Error::io(path)(std::io::Error::other(why)));
        }
        let exists = path.metadata().map(|m| m.len() > 0).unwrap_or(false);
        if files::holds_other_than(path, &Self::header()) {
            return Err(Error::Usage(format!(
                "{} holds a file whose first line is not the metrics header ({}): remove it, or give another path",
                path.display(),
                Self::header()
            )));
        }
        if let Some(done) = resumed_at
            && exists
        {
            Self::drop_rows_past(path, done)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(path)
            .map_err(Error::io(path))?;
        if !(append && exists) {
            writeln!(file, "{}", Self::header()).map_err(Error::io(path))?;
        }
        Ok(MetricsCsv {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Rewrites the file at `path` (whole or not at all) without the rows
    /// whose iteration is past `done`; untouched when there are none.
    fn drop_rows_past(path: &Path, done: usize) -> Result<()> {
        let text = std::fs::read_to_string(path).map_err(Error::io(path))?;
        let past = |line: &str| {
            let iteration = line.split(',').nth(1).and_then(|i| i.parse::<usize>().ok());
            iteration.is_some_and(|i| i > done)
        };
        if !text.lines().skip(1).any(past) {
            return Ok(());
        }
        let kept: String = text
            .lines()
            .enumerate()
            .filter(|&(i, line)| i == 0 || !past(line))
            .map(|(_, line)| format!("{line}\n"))
            .collect();
        files::write(path, kept.as_bytes()).map_err(|e| Error::io(path)(e.error))
    }

    pub fn row(&mut self, r: &EpochReport) -> Result<()> {
        writeln!(
            self.file,
            "{},{},{},{},{},{},{}",
            r.epoch,
            r.iter,
            r.loss,
            r.train_accuracy,
            r.test_accuracy,
            r.seconds,
            r.samples_per_sec
        )
        .and_then(|_| self.file.flush())
        .map_err(Error::io(&self.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(epoch: usize) -> EpochReport {
        EpochReport {
            epoch,
            iter: epoch * 600,
            loss: 0.25,
            train_accuracy: 0.9,
            test_accuracy: 0.875,
            seconds: 2.0,
            samples_per_sec: 30000.0,
            evaluated: true,
            step_losses: vec![],
        }
    }

    #[test]
    fn rows_follow_one_header_and_a_continued_run_appends() {
        let path = std::env::temp_dir().join(format!("gpu-net-metrics-{}.csv", std::process::id()));
        let mut m = MetricsCsv::open(&path, None).unwrap();
        m.row(&report(1)).unwrap();
        drop(m);
        let mut m = MetricsCsv::open(&path, Some(600)).unwrap();
        m.row(&report(2)).unwrap();
        drop(m);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], MetricsCsv::header());
        assert_eq!(lines[1], "1,600,0.25,0.9,0.875,2,30000");
        assert_eq!(lines[2], "2,1200,0.25,0.9,0.875,2,30000");
        assert_eq!(lines.len(), 3);
        // A new run replaces the file.
        MetricsCsv::open(&path, None).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
        std::fs::remove_file(&path).ok();
    }

    /// Resumed from an older checkpoint (a copy kept at iteration 1200),
    /// the rows of the run that went on from it are dropped: the CSV tells
    /// the run the checkpoint holds.
    #[test]
    fn a_run_resumed_from_an_earlier_point_drops_the_rows_past_it() {
        let path =
            std::env::temp_dir().join(format!("gpu-net-metrics-past-{}.csv", std::process::id()));
        let mut m = MetricsCsv::open(&path, None).unwrap();
        for epoch in 1..=3 {
            m.row(&report(epoch)).unwrap();
        }
        drop(m);
        let mut m = MetricsCsv::open(&path, Some(1200)).unwrap();
        m.row(&EpochReport {
            loss: 0.5,
            ..report(3)
        })
        .unwrap();
        drop(m);
        let text = std::fs::read_to_string(&path).unwrap();
        let iterations: Vec<&str> = text
            .lines()
            .skip(1)
            .map(|l| l.split(',').nth(1).unwrap())
            .collect();
        assert_eq!(iterations, ["600", "1200", "1800"]);
        assert!(
            text.lines().last().unwrap().starts_with("3,1800,0.5,"),
            "{text}"
        );
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn a_file_that_holds_something_else_is_refused_and_kept() {
        let path = std::env::temp_dir().join(format!("gpu-net-not-metrics-{}", std::process::id()));
        let other = "epoch,iteration,loss\n1,600,0.25\n";
        for (contents, append) in [
            (other.as_bytes(), false),
            (other.as_bytes(), true),
            (&[0x93u8, 0x4e, 0x55, 0x4d, 0x50, 0x59, 0xff][..], false),
        ] {
            std::fs::write(&path, contents).unwrap();
            let e = MetricsCsv::open(&path, append.then_some(600))
                .err()
                .expect("refused");
            assert!(e.is_usage(), "{e}");
            assert!(e.to_string().contains("is not the metrics header"), "{e}");
            assert_eq!(std::fs::read(&path).unwrap(), contents);
        }
        std::fs::remove_file(&path).ok();
    }
}
