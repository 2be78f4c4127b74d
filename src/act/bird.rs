//! A client of BIRD's control socket: the text protocol `birdc` speaks.
//!
//! BIRD greets with `0001 BIRD x.y.z ready.`; each command is one line; the reply is
//! lines `NNNN-text` (a line of code NNNN, more follow), ` text` (a continuation of the
//! last code) and ends with `NNNN text` (four digits and a space). Codes: 0xxx the
//! command's result (`0000` OK), 1xxx table rows, 2xxx table headers, 8xxx run-time
//! errors (`8001 Network not found`), 9xxx parse errors. [`parse_reply`] is pure and
//! property-tested; [`Bird`] speaks it over a Unix socket with a timeout per command.
//!
//! Used to check that BIRD's RPKI sessions to routewitness are up (`show protocols`), to
//! verify what a decision did (`show route [filtered] where net = P && bgp_path.last =
//! O`: `show route for P` does not find a route that is only filtered, in BIRD 2.0.12),
//! and to `reload in` protocols whose channels have no `import table`.

use ipnet::IpNet;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// Longest reply read (a `show route` of a full table is far longer: commands here ask
/// for one prefix).
const MAX_REPLY: usize = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum BirdError {
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("{0}: no reply within {1:?}")]
    Timeout(PathBuf, Duration),
    #[error("{0}: {1}")]
    Protocol(PathBuf, String),
    /// BIRD answered with an error code (8xxx or 9xxx).
    #[error("BIRD said {code}: {text}")]
    Refused { code: u16, text: String },
}

/// One line of a reply: its code (continuations carry the code they continue) and text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub code: u16,
    pub text: String,
}

/// A whole reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub lines: Vec<Line>,
    /// The code of the last line.
    pub code: u16,
}

impl Reply {
    pub fn is_error(&self) -> bool {
        self.code >= 8000
    }

    /// The text of the lines of `code`.
    pub fn texts(&self, code: u16) -> impl Iterator<Item = &str> {
        self.lines
            .iter()
            .filter(move |l| l.code == code)
            .map(|l| l.text.as_str())
    }
}

/// Reads one reply from the start of `buf`: `Ok(None)` while its last line has not
/// arrived, else the reply and the bytes it took.
pub fn parse_reply(buf: &[u8]) -> Result<Option<(Reply, usize)>, String> {
    let mut lines = Vec::new();
    let mut last: Option<u16> = None;
    let mut at = 0;
    while let Some(nl) = buf[at..].iter().position(|&b| b == b'\n') {
        let raw = &buf[at..at + nl];
        at += nl + 1;
        let line = String::from_utf8_lossy(raw);
        let line = line.trim_end_matches('\r');
        if let Some(rest) = line.strip_prefix(' ') {
            let code = last.ok_or("a continuation line before any code")?;
            lines.push(Line {
                code,
                text: rest.to_string(),
            });
            continue;
        }
        let b = line.as_bytes();
        if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || !matches!(b[4], b' ' | b'-') {
            return Err(format!("not a reply line: {line:?}"));
        }
        let code: u16 = line[..4].parse().map_err(|_| "code")?;
        last = Some(code);
        lines.push(Line {
            code,
            text: line[5..].to_string(),
        });
        if b[4] == b' ' {
            return Ok(Some((Reply { lines, code }, at)));
        }
    }
    Ok(None)
}

/// A protocol as `show protocols` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Protocol {
    pub name: String,
    pub proto: String,
    pub table: String,
    pub state: String,
    pub since: String,
    pub info: String,
}

/// The rows of a `show protocols` reply (code 1002).
pub fn protocols(reply: &Reply) -> Vec<Protocol> {
    reply
        .texts(1002)
        .filter_map(|t| {
            let mut f = t.split_whitespace();
            let name = f.next()?.to_string();
            let proto = f.next()?.to_string();
            let table = f.next()?.to_string();
            let state = f.next()?.to_string();
            let since = f.next().unwrap_or("").to_string();
            let info = f.collect::<Vec<_>>().join(" ");
            Some(Protocol {
                name,
                proto,
                table,
                state,
                since,
                info,
            })
        })
        .collect()
}

/// The prefixes of the routes in a `show route` reply (rows of code 1007: a table name
/// line, then route lines, each starting with its prefix; attribute lines of `all` are
/// indented and skipped).
pub fn route_prefixes(reply: &Reply) -> Vec<IpNet> {
    reply
        .texts(1007)
        .filter_map(|t| t.split_whitespace().next()?.parse().ok())
        .collect()
}

/// The filter of the routes of one claim (`where ...` of `show route`).
pub fn claim_filter(prefix: &IpNet, origin: u32) -> String {
    format!("where net = {prefix} && bgp_path.last = {origin}")
}

/// Where a claim's routes are in BIRD.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Seen {
    /// Only filtered (rejected by an import filter, kept by `import keep filtered`).
    Filtered,
    /// At least one route accepted.
    Accepted,
    /// Not there at all (no peer of this router sent it).
    Absent,
}

/// A connection to one BIRD control socket.
#[derive(Debug)]
pub struct Bird {
    path: PathBuf,
    stream: UnixStream,
    buf: Vec<u8>,
    timeout: Duration,
    /// The banner's version text (`BIRD 2.0.12 ready.`).
    pub banner: String,
}

impl Bird {
    pub async fn connect(path: &Path, timeout: Duration) -> Result<Bird, BirdError> {
        let stream = tokio::time::timeout(timeout, UnixStream::connect(path))
            .await
            .map_err(|_| BirdError::Timeout(path.to_path_buf(), timeout))?
            .map_err(|e| BirdError::Io(path.to_path_buf(), e))?;
        let mut b = Bird {
            path: path.to_path_buf(),
            stream,
            buf: Vec::with_capacity(4096),
            timeout,
            banner: String::new(),
        };
        let hello = b.read_reply().await?;
        if hello.code != 1 {
            return Err(BirdError::Protocol(
                b.path.clone(),
                format!("unexpected greeting {hello:?}"),
            ));
        }
        b.banner = hello
            .lines
            .first()
            .map(|l| l.text.clone())
            .unwrap_or_default();
        Ok(b)
    }

    async fn read_reply(&mut self) -> Result<Reply, BirdError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            match parse_reply(&self.buf) {
                Ok(Some((reply, n))) => {
                    self.buf.drain(..n);
                    return Ok(reply);
                }
                Ok(None) => {}
                Err(e) => return Err(BirdError::Protocol(self.path.clone(), e)),
            }
            if self.buf.len() > MAX_REPLY {
                return Err(BirdError::Protocol(
                    self.path.clone(),
                    format!("reply over {MAX_REPLY} bytes"),
                ));
            }
            let n = tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf))
                .await
                .map_err(|_| BirdError::Timeout(self.path.clone(), self.timeout))?
                .map_err(|e| BirdError::Io(self.path.clone(), e))?;
            if n == 0 {
                return Err(BirdError::Protocol(
                    self.path.clone(),
                    "BIRD closed the socket".into(),
                ));
            }
        }
    }

    /// Sends one command and reads its reply; an error code is an error.
    pub async fn command(&mut self, cmd: &str) -> Result<Reply, BirdError> {
        if cmd.contains('\n') {
            return Err(BirdError::Protocol(
                self.path.clone(),
                "a command is one line".into(),
            ));
        }
        self.stream
            .write_all(format!("{cmd}\n").as_bytes())
            .await
            .map_err(|e| BirdError::Io(self.path.clone(), e))?;
        let r = self.read_reply().await?;
        if r.is_error() {
            return Err(BirdError::Refused {
                code: r.code,
                text: r.lines.last().map(|l| l.text.clone()).unwrap_or_default(),
            });
        }
        Ok(r)
    }

    pub async fn show_protocols(&mut self) -> Result<Vec<Protocol>, BirdError> {
        Ok(protocols(&self.command("show protocols").await?))
    }

    /// Where the routes of (prefix, origin) are: filtered, accepted or absent.
    pub async fn seen(&mut self, prefix: &IpNet, origin: u32) -> Result<Seen, BirdError> {
        let f = claim_filter(prefix, origin);
        let accepted = route_prefixes(&self.command(&format!("show route {f}")).await?);
        if accepted.contains(prefix) {
            return Ok(Seen::Accepted);
        }
        let filtered = route_prefixes(&self.command(&format!("show route filtered {f}")).await?);
        Ok(if filtered.contains(prefix) {
            Seen::Filtered
        } else {
            Seen::Absent
        })
    }

    /// `reload in PROTOCOL`: re-runs its import filters (for channels without `import
    /// table`, which BIRD 2.0.12 does not re-run by itself when a ROA table changes).
    pub async fn reload_in(&mut self, protocol: &str) -> Result<(), BirdError> {
        if !protocol
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(BirdError::Protocol(
                self.path.clone(),
                format!("not a protocol name: {protocol:?}"),
            ));
        }
        self.command(&format!("reload in {protocol}"))
            .await
            .map(|_| ())
    }

    /// `configure`: BIRD re-reads its configuration file.
    pub async fn configure(&mut self) -> Result<Reply, BirdError> {
        self.command("configure").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Captured from BIRD 2.0.12 (../shared/lab/samples/bird-ctl-raw.txt and the lab).
    const SESSION: &str = "0001 BIRD 2.0.12 ready.\n8001 Network not found\n\
        1007-Table master4:\n 10.1.0.0/24          blackhole [s1 23:12:20.280] * (200)\n0000 \n\
        2002-Name       Proto      Table      State  Since         Info\n\
        1002-device1    Device     ---        up     23:12:20.280  \n \
        s1         Static     master4    up     23:12:20.280  \n \
        rw_quarantine RPKI       ---        up     23:06:27.815  Established\n0000 \n\
        0015-s1: reloading\n0000 \n";

    #[test]
    fn replies_of_a_real_session_parse() {
        let mut b = SESSION.as_bytes();
        let mut replies = Vec::new();
        while let Some((r, n)) = parse_reply(b).unwrap() {
            replies.push(r);
            b = &b[n..];
        }
        assert!(b.is_empty());
        assert_eq!(replies.len(), 5);
        assert_eq!(replies[0].code, 1);
        assert!(replies[1].is_error());
        assert_eq!(
            route_prefixes(&replies[2]),
            vec!["10.1.0.0/24".parse::<IpNet>().unwrap()]
        );
        let p = protocols(&replies[3]);
        assert_eq!(p.len(), 3);
        assert_eq!(p[2].name, "rw_quarantine");
        assert_eq!(p[2].proto, "RPKI");
        assert_eq!(
            (p[2].state.as_str(), p[2].info.as_str()),
            ("up", "Established")
        );
        assert_eq!(p[0].info, "");
        assert_eq!(replies[4].code, 0);
        // Half a reply waits; a line that is not BIRD's is an error.
        assert_eq!(parse_reply(b"1007-Table master4:\n 10.1").unwrap(), None);
        assert!(parse_reply(b"hello\n").is_err());
        assert!(parse_reply(b" 10.0.0.0/8\n0000 \n").is_err());
    }

    proptest! {
        /// Whatever arrives, parsing returns a reply, more-needed or an error, and a
        /// reply never claims more bytes than there are.
        #[test]
        fn parse_reply_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(Some((_, n))) = parse_reply(&bytes) {
                prop_assert!(n <= bytes.len());
            }
        }

        /// Lines as BIRD writes them parse back to their codes and texts.
        #[test]
        fn written_replies_parse_back(
            rows in prop::collection::vec((1000u16..3000, "[ -~]{0,30}", any::<bool>()), 0..8),
            last in 0u16..10000, text in "[ -~]{0,30}",
        ) {
            let mut s = String::new();
            let mut want = Vec::new();
            for (code, t, cont) in &rows {
                if *cont && !want.is_empty() {
                    s.push_str(&format!(" {t}\n"));
                    let c = want.last().map(|l: &Line| l.code).unwrap();
                    want.push(Line { code: c, text: t.clone() });
                } else {
                    s.push_str(&format!("{code:04}-{t}\n"));
                    want.push(Line { code: *code, text: t.clone() });
                }
            }
            s.push_str(&format!("{last:04} {text}\n"));
            want.push(Line { code: last, text: text.clone() });
            let (r, n) = parse_reply(s.as_bytes()).unwrap().unwrap();
            prop_assert_eq!(n, s.len());
            prop_assert_eq!(r.code, last);
            prop_assert_eq!(r.lines, want);
        }
    }
}
