//! `gpu-net eval`: a checkpoint's loss and accuracy on the test set (the same
//! evaluation `train` reports, on the same device), accuracy per class and
//! the confusion matrix.
//!
//! On the GPU, a [`ParamsEvaluator`] evaluates without a trainer's buffers.

use serde::Serialize;

use crate::core::error::{Result, fail_unless};
use crate::gpu::eval::ParamsEvaluator;
use crate::report::misclassified::{Miss, first_misses};
use crate::run::epoch_loop::{Split, Trainer};

/// What `gpu-net eval` needs of a device: the test set's loss and
/// accuracy, and its predictions. Every [`Trainer`] is one (through its
/// test split); a [`ParamsEvaluator`] is one without any training buffers.
pub trait Evaluator {
    fn device(&self) -> String;
    fn test_loss_accuracy(&mut self) -> Result<(f64, f64)>;
    fn test_predictions(&mut self) -> Result<Vec<u8>>;
}

impl<T: Trainer + ?Sized> Evaluator for T {
    fn device(&self) -> String {
        Trainer::device(self)
    }
    fn test_loss_accuracy(&mut self) -> Result<(f64, f64)> {
        self.evaluate(Split::Test)
    }
    fn test_predictions(&mut self) -> Result<Vec<u8>> {
        self.predictions(Split::Test)
    }
}

impl Evaluator for dyn ParamsEvaluator {
    fn device(&self) -> String {
        ParamsEvaluator::device(self)
    }
    fn test_loss_accuracy(&mut self) -> Result<(f64, f64)> {
        Ok(self.evaluate()?)
    }
    fn test_predictions(&mut self) -> Result<Vec<u8>> {
        Ok(self.predictions()?)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct EvalReport {
    pub model: String,
    pub device: String,
    pub images: usize,
    pub loss: f64,
    pub accuracy: f64,
    /// Fraction of each class's images given that class; none (JSON null)
    /// for a class the test set has no images of.
    pub per_class: Vec<Option<f64>>,
    /// `confusion[true][predicted]`: image counts.
    pub confusion: Vec<Vec<u64>>,
    /// The first test images the network gets wrong (the book's
    /// `misclassified_mnist.py` shows 20).
    pub misclassified: Vec<Miss>,
}

/// Evaluates `trainer`'s parameters on the test split, whose labels are
/// `labels` (a [`Trainer`], or a [`ParamsEvaluator`]).
pub fn evaluate<E: Evaluator + ?Sized>(
    trainer: &mut E,
    labels: &[u8],
    classes: usize,
    model: &str,
) -> Result<EvalReport> {
    let (loss, accuracy) = trainer.test_loss_accuracy()?;
    let predicted = trainer.test_predictions()?;
    fail_unless!(predicted.len() == labels.len(), "one prediction per image");
    let mut confusion = vec![vec![0u64; classes]; classes];
    for (&t, &p) in labels.iter().zip(&predicted) {
        confusion[t as usize][p as usize] += 1;
    }
    let per_class = per_class(&confusion);
    Ok(EvalReport {
        model: model.to_string(),
        device: trainer.device(),
        images: labels.len(),
        loss,
        accuracy,
        per_class,
        confusion,
        misclassified: first_misses(labels, &predicted),
    })
}

/// Each class's accuracy from `confusion[true][predicted]`: none for a
/// class with no images (0 of 0 is no accuracy at all).
fn per_class(confusion: &[Vec<u64>]) -> Vec<Option<f64>> {
    confusion
        .iter()
        .enumerate()
        .map(|(c, row)| {
            let n: u64 = row.iter().sum();
            (n > 0).then(|| row[c] as f64 / n as f64)
        })
        .collect()
}

/// What `gpu-net eval` prints.
pub fn render(r: &EvalReport) -> String {
    let mut s = format!(
        "model: {}\ndevice: {}\ntest images: {}  loss {:.4}  accuracy {:.4}\n\n",
        r.model, r.device, r.images, r.loss, r.accuracy
    );
    s += "accuracy per class:\n";
    for (c, a) in r.per_class.iter().enumerate() {
        match a {
            Some(a) => s += &format!("  {c}: {a:.4}\n"),
            None => s += &format!("  {c}: no test images\n"),
        }
    }
    s += "\nconfusion matrix (rows: true class, columns: predicted):\n      ";
    for c in 0..r.confusion.len() {
        s += &format!("{c:>6}");
    }
    s.push('\n');
    for (t, row) in r.confusion.iter().enumerate() {
        s += &format!("  {t:>3} ");
        for n in row {
            s += &format!("{n:>6}");
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_class_without_images_has_no_accuracy() {
        let confusion = vec![vec![3, 1, 0], vec![0, 0, 0], vec![0, 2, 2]];
        let got = per_class(&confusion);
        assert_eq!(got, [Some(0.75), None, Some(0.5)]);
        let report = EvalReport {
            model: "m".into(),
            device: "cpu".into(),
            images: 8,
            loss: 0.5,
            accuracy: 0.625,
            per_class: got,
            confusion,
            misclassified: vec![],
        };
        let text = render(&report);
        assert!(
            text.contains("  0: 0.7500\n  1: no test images\n  2: 0.5000\n"),
            "{text}"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["per_class"], serde_json::json!([0.75, null, 0.5]));
    }
}
