//! A parsed copy of each VRP file read, so the next command that reads the same file
//! skips decompressing and parsing it.
//!
//! Why: the bundled 723k-VRP rpki-client export (2.8 MB of bzip2, 96 MB of JSON) takes
//! about a second to decompress and parse, as long as `replay --no-judge` takes for
//! 4.6 M route events. Researchers replay many days against one VRP file; a parsed copy
//! (postcard, 9 MB) reads in a twentieth of that.
//!
//! The copy is named by the SHA-256 of the file's bytes as stored (compressed or not),
//! the load options and this build's version, so a changed file, other options or a new
//! build never read an old copy. It lives in `$ROUTEWITNESS_CACHE_DIR`, else
//! `$XDG_CACHE_HOME/routewitness`, else `~/.cache/routewitness`; `ROUTEWITNESS_CACHE_DIR=off`
//! (or no home at all, as under systemd's `DynamicUser`) turns it off. The four most
//! recently written copies are kept. A copy that does not read is removed and the file
//! parsed again: the cache can make a load faster, never different.

use super::vrps::{self, Aspa, AspaAfi, LoadOptions, SourceInfo, Vrp, VrpError, VrpSet};
use crate::model::Asn;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Copies kept (the oldest beyond this are removed when one is written).
const KEPT: usize = 4;
/// The layout below; a new one is a new name, never a misread.
const LAYOUT: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Cached {
    vrps: Vec<CachedVrp>,
    aspas: Vec<CachedAspa>,
    warnings: Vec<String>,
    format: vrps::VrpFormat,
    generated: Option<i64>,
}

#[derive(Serialize, Deserialize)]
struct CachedVrp {
    prefix: IpNet,
    max_length: u8,
    asn: u32,
    ta: Option<String>,
    expires: Option<i64>,
}

#[derive(Serialize, Deserialize)]
struct CachedAspa {
    customer: u32,
    providers: Vec<u32>,
    /// 0 both, 4, 6.
    afi: u8,
    expires: Option<i64>,
}

/// The cache directory, or `None` when there is none.
fn dir() -> Option<PathBuf> {
    match std::env::var_os("ROUTEWITNESS_CACHE_DIR") {
        Some(d) if d == "off" || d.is_empty() => None,
        Some(d) => Some(PathBuf::from(d)),
        None => std::env::var_os("XDG_CACHE_HOME")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|d| !d.is_empty())
                    .map(|h| PathBuf::from(h).join(".cache"))
            })
            .map(|d| d.join("routewitness")),
    }
}

/// Loads `path` like [`vrps::load`], through the cache.
pub fn load(path: &Path, opts: LoadOptions) -> Result<VrpSet, VrpError> {
    match dir() {
        Some(dir) => load_in(&dir, path, opts).map(|(set, _)| set),
        None => vrps::load(path, opts),
    }
}

/// Loads `path` through the cache in `dir`; says whether the copy was used.
fn load_in(dir: &Path, path: &Path, opts: LoadOptions) -> Result<(VrpSet, bool), VrpError> {
    let raw = std::fs::read(path).map_err(|source| VrpError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut h = Sha256::new();
    h.update(&raw);
    h.update(format!(
        "{LAYOUT} {} {:?} {}",
        env!("CARGO_PKG_VERSION"),
        opts.format,
        opts.skip_invalid
    ));
    let key: String = h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let copy = dir.join(format!("vrps-{key}.bin"));
    if let Some(set) = read(&copy, path) {
        tracing::debug!("{}: read from {}", path.display(), copy.display());
        return Ok((set, true));
    }
    // The bytes hashed are the bytes parsed, whatever happens to the file meanwhile.
    let bytes = crate::input::decompress_all(raw).map_err(|source| VrpError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let set = vrps::parse(&bytes, path, opts)?;
    if let Err(e) = write(dir, &copy, &set) {
        tracing::debug!("VRP cache {}: not written: {e}", copy.display());
    }
    Ok((set, false))
}

fn read(copy: &Path, path: &Path) -> Option<VrpSet> {
    let bytes = std::fs::read(copy).ok()?;
    let Ok(c) = postcard::from_bytes::<Cached>(&bytes) else {
        tracing::warn!("VRP cache {}: does not read; removed", copy.display());
        let _ = std::fs::remove_file(copy);
        return None;
    };
    Some(VrpSet {
        vrps: c
            .vrps
            .into_iter()
            .map(|v| Vrp {
                prefix: v.prefix,
                max_length: v.max_length,
                asn: Asn(v.asn),
                ta: v.ta,
                expires: v.expires,
            })
            .collect(),
        aspas: c
            .aspas
            .into_iter()
            .map(|a| Aspa {
                customer: Asn(a.customer),
                providers: a.providers.into_iter().map(Asn).collect(),
                afi: match a.afi {
                    4 => Some(AspaAfi::Ipv4),
                    6 => Some(AspaAfi::Ipv6),
                    _ => None,
                },
                expires: a.expires,
            })
            .collect(),
        warnings: c.warnings,
        source: Some(SourceInfo {
            path: path.to_path_buf(),
            format: c.format,
            generated: c.generated,
        }),
    })
}

fn write(dir: &Path, copy: &Path, set: &VrpSet) -> std::io::Result<()> {
    let source = set.source.as_ref();
    let c = Cached {
        vrps: set
            .vrps
            .iter()
            .map(|v| CachedVrp {
                prefix: v.prefix,
                max_length: v.max_length,
                asn: v.asn.0,
                ta: v.ta.clone(),
                expires: v.expires,
            })
            .collect(),
        aspas: set
            .aspas
            .iter()
            .map(|a| CachedAspa {
                customer: a.customer.0,
                providers: a.providers.iter().map(|p| p.0).collect(),
                afi: match a.afi {
                    Some(AspaAfi::Ipv4) => 4,
                    Some(AspaAfi::Ipv6) => 6,
                    None => 0,
                },
                expires: a.expires,
            })
            .collect(),
        warnings: set.warnings.clone(),
        format: source.map_or(vrps::VrpFormat::Auto, |s| s.format),
        generated: source.and_then(|s| s.generated),
    };
    let bytes = postcard::to_stdvec(&c).map_err(std::io::Error::other)?;
    std::fs::create_dir_all(dir)?;
    // Written aside and renamed: a reader never sees half a copy.
    let tmp = dir.join(format!(".vrps-{}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, copy)?;
    let mut copies: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(dir)?
        .flatten()
        .filter(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            n.starts_with("vrps-") && n.ends_with(".bin")
        })
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    copies.sort();
    let n = copies.len();
    for (_, old) in copies.into_iter().take(n.saturating_sub(KEPT)) {
        let _ = std::fs::remove_file(old);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A copy reads back as the file parsed; a damaged copy is removed and the file
    /// parsed again; a changed file is never answered from the old copy; four are kept.
    #[test]
    fn a_copy_reads_as_the_file_and_a_bad_one_is_parsed_again() {
        let dir = std::env::temp_dir().join(format!("rw-vrp-cache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("vrps.json");
        let export = |asn: u32| {
            format!(
                r#"{{"metadata":{{"buildtime":"2025-07-20T09:31:35Z"}},
                   "roas":[{{"prefix":"192.0.2.0/24","maxLength":24,"asn":"AS{asn}","ta":"x","expires":5}}],
                   "provider_authorizations":{{"ipv4":[{{"customer_asid":64496,"providers":[1,2]}}],"ipv6":[]}}}}"#
            )
        };
        std::fs::write(&file, export(64496)).unwrap();
        let cache = dir.join("cache");
        let opts = LoadOptions::default();
        let (first, hit) = load_in(&cache, &file, opts).unwrap();
        assert!(!hit);
        let (second, hit) = load_in(&cache, &file, opts).unwrap();
        assert!(hit);
        assert_eq!(second.vrps, first.vrps);
        assert_eq!(second.aspas, first.aspas);
        assert_eq!(second.warnings, first.warnings);
        assert_eq!(
            second.source.as_ref().map(|s| (s.format, s.generated)),
            first.source.as_ref().map(|s| (s.format, s.generated))
        );
        assert_eq!(second.vrps[0].asn, Asn(64496));
        // Another file's content: not the old copy.
        std::fs::write(&file, export(64497)).unwrap();
        let (changed, hit) = load_in(&cache, &file, opts).unwrap();
        assert!(!hit);
        assert_eq!(changed.vrps[0].asn, Asn(64497));
        // A damaged copy: removed, the file parsed again.
        let copies = || -> Vec<PathBuf> {
            std::fs::read_dir(&cache)
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .collect()
        };
        for c in copies() {
            std::fs::write(&c, b"\xff\xff\xff").unwrap();
        }
        let (again, hit) = load_in(&cache, &file, opts).unwrap();
        assert!(!hit, "a damaged copy is not used");
        assert_eq!(again.vrps, changed.vrps);
        for asn in 1..8 {
            std::fs::write(&file, export(asn)).unwrap();
            load_in(&cache, &file, opts).unwrap();
        }
        assert_eq!(copies().len(), KEPT);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
