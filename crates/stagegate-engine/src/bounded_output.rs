//! Bounded buffers for a program agent's output pipes.
//!
//! Both pipes are drained for as long as the program runs, so a chatty program can never block on a
//! full pipe (the ripgrep lesson). What is kept is bounded either way: stdout is the agent's answer,
//! so more than the cap is an error the caller reports; stderr is only diagnostics, so it keeps the
//! most recent bytes, which is where the reason for a failure usually is.
//!
//! The drain methods take `&mut self` and append as they go, so dropping a drain future midway
//! (the process was stopped) keeps everything read so far.

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::output_format::DeadEnd;

/// How much is read from a pipe at a time.
const CHUNK_BYTES: usize = 16 * 1024;

/// Output that must fit under a cap: the agent's answer on stdout.
#[derive(Debug)]
pub(crate) struct CappedOutput {
    bytes: Vec<u8>,
    cap: u64,
    /// Everything read from the pipe, including bytes not kept once over the cap.
    read: u64,
    /// Says, of each complete line, whether the program has reached a dead end it will not
    /// leave by itself (and what it said); `None` reads to the end.
    dead_end: Option<DeadEnd>,
    /// Where the first line not yet shown to `dead_end` starts in `bytes`.
    unchecked: usize,
}

/// Why reading a program's output stopped before its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DrainStop {
    OverCap(OverCap),
    /// The program said it is stuck (codex "waiting for network"), in its own words.
    DeadEnd(String),
}

/// The pipe said more than the cap allows; reading stopped there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OverCap {
    /// Bytes read before reading stopped (more than the cap).
    pub(crate) read: u64,
}

impl CappedOutput {
    pub(crate) fn new(cap: u64) -> Self {
        CappedOutput {
            bytes: Vec::new(),
            cap,
            read: 0,
            dead_end: None,
            unchecked: 0,
        }
    }

    /// Also shows every complete line to `dead_end`, and stops reading at the first line it
    /// names a dead end.
    pub(crate) fn watching(mut self, dead_end: Option<DeadEnd>) -> Self {
        self.dead_end = dead_end;
        self
    }

    /// Reads until end of file, or until more than the cap has arrived. A read error ends the
    /// drain like end of file would: the exit status, not the pipe, says whether the run failed.
    pub(crate) async fn drain<R: AsyncRead + Unpin>(
        &mut self,
        reader: &mut R,
    ) -> Result<(), DrainStop> {
        let mut chunk = [0_u8; CHUNK_BYTES];
        loop {
            let count = match reader.read(&mut chunk).await {
                Ok(0) | Err(_) => return Ok(()),
                Ok(count) => count,
            };
            self.push(&chunk[..count]).map_err(DrainStop::OverCap)?;
            if let Some(said) = self.dead_end_in_new_lines() {
                return Err(DrainStop::DeadEnd(said));
            }
        }
    }

    /// What `dead_end` finds in the lines completed since it last looked.
    fn dead_end_in_new_lines(&mut self) -> Option<String> {
        let dead_end = self.dead_end?;
        while let Some(length) = self.bytes[self.unchecked..]
            .iter()
            .position(|byte| *byte == b'\n')
        {
            let line = &self.bytes[self.unchecked..self.unchecked + length];
            self.unchecked += length + 1;
            if let Some(said) = dead_end(line) {
                return Some(said);
            }
        }
        None
    }

    fn push(&mut self, chunk: &[u8]) -> Result<(), OverCap> {
        self.read = self.read.saturating_add(chunk.len() as u64);
        if self.read > self.cap {
            return Err(OverCap { read: self.read });
        }
        self.bytes.extend_from_slice(chunk);
        Ok(())
    }

    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// The last `limit` bytes of a stream: a program's stderr.
#[derive(Debug)]
pub(crate) struct TailBuffer {
    /// Holds up to twice `limit` so that dropping the front is amortised, not done on every chunk.
    bytes: Vec<u8>,
    limit: usize,
}

impl TailBuffer {
    pub(crate) fn new(limit: usize) -> Self {
        TailBuffer {
            bytes: Vec::new(),
            limit,
        }
    }

    /// Reads until end of file (or a read error), keeping the tail.
    pub(crate) async fn drain<R: AsyncRead + Unpin>(&mut self, reader: &mut R) {
        let mut chunk = [0_u8; CHUNK_BYTES];
        loop {
            match reader.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(count) => self.push(&chunk[..count]),
            }
        }
    }

    pub(crate) fn push(&mut self, chunk: &[u8]) {
        if chunk.len() >= self.limit {
            self.bytes.clear();
            self.bytes
                .extend_from_slice(&chunk[chunk.len() - self.limit..]);
            return;
        }
        self.bytes.extend_from_slice(chunk);
        if self.bytes.len() > 2 * self.limit {
            let excess = self.bytes.len() - self.limit;
            self.bytes.drain(..excess);
        }
    }

    /// The kept tail: at most `limit` bytes.
    pub(crate) fn into_bytes(mut self) -> Vec<u8> {
        if self.bytes.len() > self.limit {
            let excess = self.bytes.len() - self.limit;
            self.bytes.drain(..excess);
        }
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn capped_output_keeps_everything_up_to_the_cap() {
        let mut output = CappedOutput::new(5);
        let mut reader: &[u8] = b"hello";
        assert_eq!(output.drain(&mut reader).await, Ok(()));
        assert_eq!(output.into_bytes(), b"hello");
    }

    #[tokio::test]
    async fn capped_output_stops_past_the_cap() {
        let mut output = CappedOutput::new(4);
        let mut reader: &[u8] = b"hello";
        assert_eq!(
            output.drain(&mut reader).await,
            Err(DrainStop::OverCap(OverCap { read: 5 }))
        );
    }

    fn stuck(line: &[u8]) -> Option<String> {
        line.starts_with(b"stuck:")
            .then(|| String::from_utf8_lossy(line).into_owned())
    }

    #[tokio::test]
    async fn reading_stops_at_the_first_line_that_names_a_dead_end() {
        let mut output = CappedOutput::new(1000).watching(Some(stuck));
        let mut reader: &[u8] = b"working\nstuck: no network\nnever read\n";
        assert_eq!(
            output.drain(&mut reader).await,
            Err(DrainStop::DeadEnd("stuck: no network".to_owned()))
        );
        // A line is judged only once it is complete.
        let mut output = CappedOutput::new(1000).watching(Some(stuck));
        let mut reader: &[u8] = b"ok\nstuck: but no newline yet";
        assert_eq!(output.drain(&mut reader).await, Ok(()));
    }

    #[test]
    fn tail_buffer_keeps_the_last_bytes() {
        let mut tail = TailBuffer::new(4);
        for chunk in [&b"ab"[..], b"cd", b"ef", b"g", b"hij"] {
            tail.push(chunk);
        }
        assert_eq!(tail.into_bytes(), b"ghij");

        let mut tail = TailBuffer::new(4);
        tail.push(b"0123456789");
        assert_eq!(tail.into_bytes(), b"6789");
    }
}
