//! `kubewasm shadow`: prints the shadow report a running host serves at
//! `GET /shadow` on its admin port, and `kubewasm shadow promote NAME`
//! renames a shadow's files into place in the plugin directory (which a
//! running host then reloads). Promotion goes through the files, not the
//! admin port, which is unauthenticated: whoever may promote is whoever may
//! write the plugin directory, as for any plugin change.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cmd::cli::ShadowFormat;
use crate::shadow::Report;
use crate::shadow::state::State;

/// How long the admin server may take to connect and to answer.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Largest report read.
const MAX_REPORT_BYTES: u64 = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ShadowError {
    #[error("cannot reach the admin server at {addr}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the admin server at {addr} answered {status}: {body}")]
    Status {
        addr: String,
        status: String,
        body: String,
    },
    #[error("the admin server at {addr} sent a report that does not parse")]
    Parse {
        addr: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{name:?} is not a plugin file name (NAME of NAME.wasm)")]
    Name { name: String },
    #[error("failed to promote the shadow of {name} in {dir}")]
    Promote {
        name: String,
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ShadowError {
    /// 2 for a bad argument, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            ShadowError::Name { .. } => 2,
            _ => 1,
        }
    }
}

/// The report of the host whose admin server is at `addr`, rendered.
pub fn report(addr: &str, format: ShadowFormat) -> Result<String, ShadowError> {
    let body = get(addr, "/shadow")?;
    let report: Report = serde_json::from_str(&body).map_err(|source| ShadowError::Parse {
        addr: addr.to_string(),
        source,
    })?;
    Ok(match format {
        ShadowFormat::Json => {
            let mut text = serde_json::to_string_pretty(&report).unwrap_or_default();
            text.push('\n');
            text
        }
        ShadowFormat::Text => render(&report),
    })
}

/// Renames `DIR/NAME.next.wasm` (and its settings) into place.
pub fn promote(name: &str, dir: &Path) -> Result<String, ShadowError> {
    if name.is_empty() || name.starts_with('.') || name.contains('/') || name.contains('\0') {
        return Err(ShadowError::Name {
            name: name.to_string(),
        });
    }
    let shadow = dir.join(format!("{name}{}", crate::shadow::files::SUFFIX));
    let serving =
        crate::shadow::files::promote_shadow(&shadow).map_err(|source| ShadowError::Promote {
            name: name.to_string(),
            dir: dir.to_path_buf(),
            source,
        })?;
    Ok(format!(
        "promoted: {} now holds the shadow; a running host reloads it\n",
        serving.display()
    ))
}

/// A plain HTTP/1.0 GET of `path` (the admin server speaks nothing else).
fn get(addr: &str, path: &str) -> Result<String, ShadowError> {
    let connect = |source| ShadowError::Connect {
        addr: addr.to_string(),
        source,
    };
    let target = addr
        .to_socket_addrs()
        .map_err(connect)?
        .next()
        .ok_or_else(|| connect(std::io::ErrorKind::NotFound.into()))?;
    let mut stream = TcpStream::connect_timeout(&target, TIMEOUT).map_err(connect)?;
    stream.set_read_timeout(Some(TIMEOUT)).map_err(connect)?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(connect)?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").map_err(connect)?;
    let mut response = Vec::new();
    stream
        .take(MAX_REPORT_BYTES)
        .read_to_end(&mut response)
        .map_err(connect)?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(ShadowError::Status {
            addr: addr.to_string(),
            status: status.to_string(),
            body: body.trim().to_string(),
        });
    }
    Ok(body.to_string())
}

/// The report in words, one block per shadow.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    if report.shadows.is_empty() && report.load_failures.is_empty() {
        out.push_str("no shadows loaded\n");
    }
    for s in &report.shadows {
        let state = match &s.state {
            State::Running => "running".to_string(),
            State::Aborted(reason) => format!("ABORTED: {reason}"),
            State::Promoted => "promoted".to_string(),
            State::PromotionFailed(reason) => format!("PROMOTION FAILED: {reason}"),
        };
        let _ = writeln!(out, "{}: {state}", s.plugin);
        let digest: String = s.digest.chars().take(12).collect();
        let from = s.source.as_deref().unwrap_or("-");
        let _ = writeln!(
            out,
            "  version {} ({digest}) from {from}, loaded {}",
            s.version, s.loaded_at
        );
        let c = &s.counts;
        let _ = writeln!(
            out,
            "  equal {}  different {}  failed {}  skipped {}  dropped {}  uncaptured reads {}",
            c.equal, c.different, c.failed, c.skipped, c.dropped, c.uncaptured_reads
        );
        match s.promote_after {
            Some(n) => {
                let _ = writeln!(out, "  equal in a row {} of {n} to promote", s.streak);
            }
            None => {
                let _ = writeln!(out, "  equal in a row {}", s.streak);
            }
        }
        if !s.recent_differences.is_empty() {
            let _ = writeln!(out, "  recent differences (oldest first):");
        }
        for d in &s.recent_differences {
            let _ = writeln!(
                out,
                "    {} {} ({}, serving {})",
                d.at, d.object, d.event, d.serving
            );
            for line in d.summary.lines() {
                let _ = writeln!(out, "      {line}");
            }
        }
    }
    for f in &report.load_failures {
        let _ = writeln!(out, "{}: NOT LOADED: {}", f.file, f.error);
    }
    out
}
