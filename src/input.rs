//! Opening input files: plain, gzip or bzip2 (by magic bytes, not by name), with the
//! decompression on its own thread so that parsing and judging never wait on it.
//!
//! A compressed stream that ends early or is corrupt does not become a read error: the
//! reader ends cleanly at the last good byte and the failure is kept in
//! [`InputReader::decompress_error`], so the MRT parser reports a torn final record at an
//! exact offset and everything before it is still used.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;

/// Compression of an input file, told by its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Gzip,
    Bzip2,
}

impl Compression {
    pub fn sniff(head: &[u8]) -> Compression {
        match head {
            [0x1f, 0x8b, ..] => Compression::Gzip,
            [b'B', b'Z', b'h', ..] => Compression::Bzip2,
            _ => Compression::None,
        }
    }
}

const CHUNK: usize = 256 * 1024;
/// Chunks in flight between the decompressor and the parser: bounded, so a slow parser
/// holds the decompressor back instead of buffering the whole file.
const CHUNKS_IN_FLIGHT: usize = 8;

/// A reader over the decompressed bytes of one file.
pub struct InputReader {
    inner: Inner,
    /// Compressed bytes read from disk so far (for progress bars).
    pub disk_bytes: Arc<AtomicU64>,
    error: Arc<Mutex<Option<String>>>,
    pub compression: Compression,
}

enum Inner {
    Plain(BufReader<CountingReader<File>>),
    Memory(io::Cursor<Vec<u8>>),
    Threaded {
        rx: Receiver<Vec<u8>>,
        chunk: Vec<u8>,
        pos: usize,
    },
}

impl InputReader {
    /// Opens `path`; a decompression thread is started for compressed files.
    pub fn open(path: &Path) -> io::Result<InputReader> {
        Self::open_counted(path, None)
    }

    /// Like [`Self::open`], adding the bytes read from disk to `disk_bytes`.
    pub fn open_counted(
        path: &Path,
        disk_bytes: Option<Arc<AtomicU64>>,
    ) -> io::Result<InputReader> {
        let mut file = File::open(path)?;
        let mut head = [0u8; 3];
        let mut got = 0;
        while got < head.len() {
            match file.read(&mut head[got..])? {
                0 => break,
                n => got += n,
            }
        }
        let compression = Compression::sniff(&head[..got]);
        // Reopen rather than seek so that pipes and /dev/stdin-like paths fail clearly.
        let file = File::open(path)?;
        let disk_bytes = disk_bytes.unwrap_or_default();
        let error = Arc::new(Mutex::new(None));
        let counting = CountingReader {
            inner: file,
            count: disk_bytes.clone(),
        };
        let inner = match compression {
            Compression::None => Inner::Plain(BufReader::with_capacity(CHUNK, counting)),
            Compression::Gzip => spawn_decoder(
                flate2::read::MultiGzDecoder::new(BufReader::with_capacity(CHUNK, counting)),
                error.clone(),
            )?,
            Compression::Bzip2 => spawn_decoder(
                bzip2::read::MultiBzDecoder::new(BufReader::with_capacity(CHUNK, counting)),
                error.clone(),
            )?,
        };
        Ok(InputReader {
            inner,
            disk_bytes,
            error,
            compression,
        })
    }

    /// A reader over bytes already in memory (uncompressed), for tests and fuzzing.
    pub fn from_memory(bytes: Vec<u8>) -> InputReader {
        InputReader {
            inner: Inner::Memory(io::Cursor::new(bytes)),
            disk_bytes: Arc::default(),
            error: Arc::default(),
            compression: Compression::None,
        }
    }

    /// Why decompression stopped early, if it did (only meaningful at end of stream).
    pub fn decompress_error(&self) -> Option<String> {
        self.error.lock().ok().and_then(|e| e.clone())
    }
}

fn spawn_decoder<D: Read + Send + 'static>(
    mut decoder: D,
    error: Arc<Mutex<Option<String>>>,
) -> io::Result<Inner> {
    let (tx, rx) = sync_channel::<Vec<u8>>(CHUNKS_IN_FLIGHT);
    thread::Builder::new()
        .name("decompress".into())
        .spawn(move || loop {
            let mut buf = vec![0u8; CHUNK];
            let mut filled = 0;
            let mut failure = None;
            while filled < CHUNK {
                match decoder.read(&mut buf[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        failure = Some(e.to_string());
                        break;
                    }
                }
            }
            buf.truncate(filled);
            let done = filled < CHUNK;
            if filled > 0 && tx.send(buf).is_err() {
                return; // reader dropped: stop quietly
            }
            if let Some(msg) = failure {
                if let Ok(mut slot) = error.lock() {
                    *slot = Some(msg);
                }
                return;
            }
            if done {
                return;
            }
        })?;
    Ok(Inner::Threaded {
        rx,
        chunk: Vec::new(),
        pos: 0,
    })
}

impl Read for InputReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match &mut self.inner {
            Inner::Plain(r) => r.read(out),
            Inner::Memory(r) => r.read(out),
            Inner::Threaded { rx, chunk, pos } => {
                while *pos >= chunk.len() {
                    match rx.recv() {
                        Ok(next) => {
                            *chunk = next;
                            *pos = 0;
                        }
                        Err(_) => return Ok(0), // decoder finished (or failed: see error)
                    }
                }
                let n = out.len().min(chunk.len() - *pos);
                out[..n].copy_from_slice(&chunk[*pos..*pos + n]);
                *pos += n;
                Ok(n)
            }
        }
    }
}

struct CountingReader<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Decompresses a whole file already in memory (plain, gzip or bzip2, by magic bytes),
/// failing on a torn stream, on this thread.
pub fn decompress_all(raw: Vec<u8>) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    match Compression::sniff(&raw) {
        Compression::None => return Ok(raw),
        Compression::Gzip => flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut out)?,
        Compression::Bzip2 => bzip2::read::MultiBzDecoder::new(&raw[..]).read_to_end(&mut out)?,
    };
    Ok(out)
}

/// Reads a whole (possibly compressed) file into memory, failing on a torn stream.
/// For small inputs such as VRP snapshots, where a partial file must not be used.
pub fn read_all(path: &Path) -> io::Result<Vec<u8>> {
    let mut reader = InputReader::open(path)?;
    let mut out = Vec::new();
    reader.read_to_end(&mut out)?;
    if let Some(err) = reader.decompress_error() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{:?} stream is damaged after {} bytes: {err}",
                reader.compression,
                out.len()
            ),
        ));
    }
    Ok(out)
}
