//! Parallel, reproducible gzip: one gzip member whose deflate stream is made of independently
//! compressed chunks (the way pigz does it), so large layers use every core.
//!
//! Invariants: the output depends only on the input bytes, the level and [`CHUNK_SIZE`], never
//! on the number of threads or on timing: chunks have a fixed size, each is compressed with a
//! fresh deflate state and ended with a sync flush (byte-aligned, not final), and the chunks are
//! written in input order. The header has no file name and mtime 0. Memory stays bounded: at
//! most two chunks per worker are in flight.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use flate2::{Compress, Compression, Crc, FlushCompress};

/// Uncompressed bytes per independently compressed chunk (1 MiB): large enough that starting
/// each chunk without history costs well under 1% of compression ratio.
pub const CHUNK_SIZE: usize = 1 << 20;

/// The gzip header: magic, deflate, no flags, mtime 0, no extra flags, OS "unknown".
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// A final, empty, fixed-Huffman deflate block: ends the deflate stream.
const FINAL_BLOCK: [u8; 2] = [0x03, 0x00];

type Job = (Vec<u8>, Sender<io::Result<Vec<u8>>>);

/// A gzip encoder compressing [`CHUNK_SIZE`] chunks on worker threads.
pub struct ParGzEncoder<W: Write> {
    inner: Option<W>,
    level: u32,
    buf: Vec<u8>,
    crc: Crc,
    jobs: Option<Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
    pending: VecDeque<Receiver<io::Result<Vec<u8>>>>,
    max_pending: usize,
}

impl<W: Write> ParGzEncoder<W> {
    /// Starts a gzip stream into `inner` at `level` (0-9) using `threads` workers (at least 1).
    pub fn new(mut inner: W, level: u32, threads: usize) -> io::Result<Self> {
        inner.write_all(&HEADER)?;
        let threads = threads.max(1);
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let workers = (0..threads)
            .map(|_| {
                let rx = Arc::clone(&rx);
                std::thread::spawn(move || loop {
                    let job = match rx.lock() {
                        Ok(guard) => guard.recv(),
                        Err(_) => return,
                    };
                    let Ok((chunk, reply)) = job else { return };
                    let _ = reply.send(deflate_chunk(&chunk, level));
                })
            })
            .collect();
        Ok(Self {
            inner: Some(inner),
            level,
            buf: Vec::with_capacity(CHUNK_SIZE),
            crc: Crc::new(),
            jobs: Some(tx),
            workers,
            pending: VecDeque::new(),
            max_pending: threads * 2,
        })
    }

    /// The compression level.
    pub fn level(&self) -> u32 {
        self.level
    }

    fn inner(&mut self) -> io::Result<&mut W> {
        self.inner
            .as_mut()
            .ok_or_else(|| io::Error::other("gzip stream already finished"))
    }

    /// Hands the buffered chunk to a worker.
    fn dispatch(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK_SIZE));
        let (tx, rx) = mpsc::channel();
        self.jobs
            .as_ref()
            .ok_or_else(|| io::Error::other("gzip workers stopped"))?
            .send((chunk, tx))
            .map_err(|_| io::Error::other("gzip worker thread died"))?;
        self.pending.push_back(rx);
        while self.pending.len() >= self.max_pending {
            self.write_oldest()?;
        }
        Ok(())
    }

    /// Waits for the oldest chunk in flight and writes it out.
    fn write_oldest(&mut self) -> io::Result<()> {
        if let Some(rx) = self.pending.pop_front() {
            let out = rx
                .recv()
                .map_err(|_| io::Error::other("gzip worker thread died"))??;
            self.inner()?.write_all(&out)?;
        }
        Ok(())
    }

    /// Compresses what is left, writes the trailer and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.dispatch()?;
        while !self.pending.is_empty() {
            self.write_oldest()?;
        }
        let crc = self.crc.sum();
        let size = self.crc.amount();
        let mut inner = self
            .inner
            .take()
            .ok_or_else(|| io::Error::other("gzip stream already finished"))?;
        inner.write_all(&FINAL_BLOCK)?;
        inner.write_all(&crc.to_le_bytes())?;
        inner.write_all(&size.to_le_bytes())?;
        Ok(inner)
    }
}

impl<W: Write> Write for ParGzEncoder<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = CHUNK_SIZE - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        self.crc.update(&data[..n]);
        if self.buf.len() == CHUNK_SIZE {
            self.dispatch()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write> Drop for ParGzEncoder<W> {
    fn drop(&mut self) {
        self.jobs = None;
        self.pending.clear();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// Raw deflate of one chunk, with a fresh state, ended by a sync flush (not a final block).
fn deflate_chunk(chunk: &[u8], level: u32) -> io::Result<Vec<u8>> {
    let mut c = Compress::new(Compression::new(level), false);
    let mut out = Vec::with_capacity(chunk.len() / 2 + 4096);
    loop {
        if out.capacity() - out.len() < 4096 {
            out.reserve(out.capacity().max(4096));
        }
        let consumed = c.total_in() as usize;
        c.compress_vec(&chunk[consumed..], &mut out, FlushCompress::Sync)
            .map_err(io::Error::other)?;
        // The flush is complete once all input is consumed and output room is left over.
        if c.total_in() as usize == chunk.len() && out.len() < out.capacity() {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample(len: usize) -> Vec<u8> {
        let mut x: u32 = 12345;
        (0..len)
            .map(|i| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                if i % 7 == 0 {
                    (x >> 24) as u8
                } else {
                    (i % 251) as u8
                }
            })
            .collect()
    }

    fn gz(data: &[u8], threads: usize) -> Vec<u8> {
        let mut e = ParGzEncoder::new(Vec::new(), 6, threads).unwrap();
        for piece in data.chunks(7777) {
            e.write_all(piece).unwrap();
        }
        e.finish().unwrap()
    }

    #[test]
    fn round_trips_as_one_gzip_member() {
        for len in [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, 3 * CHUNK_SIZE + 17] {
            let data = sample(len);
            let out = gz(&data, 2);
            assert_eq!(&out[..4], &[0x1f, 0x8b, 8, 0]);
            // A single-member decoder must see all of it.
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&out[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data, "len {len}");
        }
    }

    #[test]
    fn output_does_not_depend_on_thread_count() {
        let data = sample(3 * CHUNK_SIZE + 5);
        assert_eq!(gz(&data, 1), gz(&data, 4));
    }
}
