//! Turns template documents into text on a second thread while the rest of the chart is
//! generated: writing the YAML of every Deployment, Service and ConfigMap (and freeing the trees)
//! is a third of the chart's work for a large stack, and it needs nothing but the documents.
//! When the chart goes to a folder, the same thread writes each template's file into the
//! [`Staging`](crate::emit::bundle::Staging) folder as soon as its text is ready, so creating the
//! thousands of files of a large chart overlaps with generating it.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use std::path::PathBuf;

use crate::emit::bundle::{StageWriter, Staged};
use crate::emit::yaml::{self, Yaml};

/// Templates queued before the generator waits for the writer: bounds the memory held by trees
/// not yet written when the writer thread falls behind.
const QUEUE: usize = 64;

/// One file to write: its bundle path, its content and its file mode.
pub(crate) struct Job {
    pub path: String,
    pub content: Content,
    pub mode: u32,
}

/// What a file holds: template documents to write as YAML, or text already made (the chart's
/// own files, which then reach the staging folder the same way).
pub(crate) enum Content {
    Docs(Vec<Yaml>),
    Text(String),
}

impl Content {
    /// The file's text.
    pub fn into_text(self) -> String {
        match self {
            Content::Docs(docs) => render(&docs),
            Content::Text(text) => text,
        }
    }
}

/// A written template.
pub(crate) struct Rendered {
    pub path: String,
    pub text: String,
    pub mode: u32,
}

/// The writer thread, or none when a thread cannot be started (then templates are written on the
/// caller's thread; the output is the same).
pub(crate) struct Renderer {
    tx: SyncSender<Job>,
    handle: JoinHandle<(Vec<Rendered>, Staged)>,
}

impl Renderer {
    /// Starts the writer thread; with `stage`, it also writes each template into that folder.
    pub fn start(stage: Option<PathBuf>) -> Option<Self> {
        let (tx, rx) = sync_channel::<Job>(QUEUE);
        let handle = std::thread::Builder::new()
            .name("emit-render".into())
            .spawn(move || work(&rx, stage.map(StageWriter::new)))
            .ok()?;
        Some(Self { tx, handle })
    }

    /// Queues a template; gives it back if the writer thread is gone.
    pub fn submit(&self, job: Job) -> Result<(), Job> {
        self.tx.send(job).map_err(|e| e.0)
    }

    /// Waits for every queued template and returns them in the order they were submitted, with
    /// the files written to the staging folder.
    pub fn finish(self) -> (Vec<Rendered>, Staged) {
        drop(self.tx);
        match self.handle.join() {
            Ok(done) => done,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

fn work(rx: &Receiver<Job>, stage: Option<StageWriter>) -> (Vec<Rendered>, Staged) {
    let render_one = |job: Job| Rendered {
        text: job.content.into_text(),
        path: job.path,
        mode: job.mode,
    };
    let Some(mut stage) = stage else {
        return (rx.iter().map(render_one).collect(), Staged::default());
    };
    // Creating a file costs about as much as writing its text: a third thread creates them (on
    // the core the generator leaves idle while it waits), so neither waits for the other.
    let (tx, files) = std::sync::mpsc::channel::<Rendered>();
    let writer = std::thread::Builder::new()
        .name("emit-files".into())
        .spawn(move || {
            // A written file's text is not kept: the chart's largest part need not stay in memory.
            let done: Vec<Rendered> = files
                .iter()
                .map(|mut t| {
                    if stage.write(&t.path, t.text.as_bytes(), t.mode) {
                        t.text = String::new();
                    }
                    t
                })
                .collect();
            (done, stage.finish())
        });
    let Ok(writer) = writer else {
        // No thread: render here, and leave every file to the write at the end.
        return (rx.iter().map(render_one).collect(), Staged::default());
    };
    for job in rx.iter() {
        // The writer only stops early by panicking; its join below reports that.
        let _ = tx.send(render_one(job));
    }
    drop(tx);
    match writer.join() {
        Ok(done) => done,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// The text of a template made of one or more YAML documents.
pub(crate) fn render(docs: &[Yaml]) -> String {
    let mut text = String::new();
    for (i, d) in docs.iter().enumerate() {
        if i > 0 {
            text.push_str("---\n");
        }
        yaml::write(&mut text, d, true);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_thread_writes_what_the_caller_would_in_order() {
        let docs = |i: i64| vec![Yaml::map([("a", Yaml::Int(i))]), Yaml::str("b")];
        let r = Renderer::start(None).expect("thread");
        for i in 0..200 {
            let job = Job {
                path: format!("t{i}.yaml"),
                content: Content::Docs(docs(i)),
                mode: 0o644,
            };
            assert!(r.submit(job).is_ok());
        }
        let (done, staged) = r.finish();
        assert_eq!(staged, Staged::default());
        assert_eq!(done.len(), 200);
        for (i, d) in (0..).zip(&done) {
            assert_eq!(d.path, format!("t{i}.yaml"));
            assert_eq!(d.text, render(&docs(i)));
            assert_eq!(d.text, format!("a: {i}\n---\nb\n"));
        }
    }
}
