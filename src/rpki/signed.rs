//! Signed RPKI objects, read with the `rpki` crate (NLnet Labs): `routewitness rpki inspect`.
//!
//! Each file is decoded by its kind (`.roa`, `.asa`, `.mft`, `.cer`, `.crl`) and what it
//! asserts is reported. Objects are read and validated as relying parties do (the crate's
//! non-strict mode: BER where DER is due, a missing signing time are accepted, as
//! Routinator does by default); where an object departs from the strict profile, that is
//! reported too. A signed object's CMS signature and EE certificate (RFC 6488 §3)
//! can only be checked against the certificate that issued the EE certificate; with
//! `--repo DIR`, a local copy of the repository laid out by rsync URI
//! (`DIR/HOST/MODULE/PATH`, as rpki-client's cache and the shared test repositories are),
//! the issuer is found through the certificates' CA-issuer URIs and the chain is walked up
//! to a self-signed trust anchor, each link validated. Validation is done at the current
//! time; when it fails there, it is tried again at the first instant every certificate of
//! the chain was valid (the latest start of validity along it), so an archived object
//! reads "valid when issued, expired now" rather than "invalid".
//!
//! [`scan_repository`] is the daemon's `directory` source: every ROA and ASPA of a
//! repository copy, kept when it validates now (signature, EE certificate, resources
//! within the EE certificate's, not on the CRL its EE certificate names, chain up to a
//! trust anchor that a given TAL pins).
//!
//! Not done here (say so): fetching (rsync, RRDP), manifests' file lists against the
//! directory, CRL checks of the CA certificates above the EE. Full relying-party work
//! stays with Routinator and rpki-client.

use rpki::repository::aspa::Aspa;
use rpki::repository::cert::{Cert, ResourceCert};
use rpki::repository::crl::Crl;
use rpki::repository::manifest::Manifest;
use rpki::repository::roa::Roa;
use rpki::repository::sigobj::SignedObject;
use rpki::repository::tal::{Tal, TalInfo};
use rpki::repository::x509::Time;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// What one file is and says.
#[derive(Clone, Debug, Serialize)]
pub struct Inspection {
    pub file: PathBuf,
    /// `roa`, `aspa`, `manifest`, `certificate`, `crl`, or `unknown`.
    pub kind: &'static str,
    /// Decoded (as relying parties read objects: BER where DER is due, missing signing
    /// time and the like are accepted; see `strict`).
    pub decoded: bool,
    /// Where the object departs from the strict RFC profile (it still decoded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strict: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What it asserts (ROA: AS and prefixes; ASPA: customer and providers; ...).
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub content: serde_json::Value,
    /// The EE (or the certificate's own) validity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<String>,
    /// `valid`, `valid-when-issued` (expired now), `invalid`, or `unchecked` (no issuer
    /// found: give `--repo`).
    pub signature: &'static str,
    /// Why not valid, or what was checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The certificates walked, from the object's issuer to the trust anchor.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<String>,
}

fn kind_of(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("roa") => "roa",
        Some("asa") => "aspa",
        Some("mft") => "manifest",
        Some("cer") => "certificate",
        Some("crl") => "crl",
        _ => "unknown",
    }
}

fn time(t: Time) -> String {
    t.to_rfc3339()
}

/// Why a chain could not be validated.
enum ChainError {
    /// A certificate of the chain is not in the repository copy: nothing was checked.
    Missing(String),
    /// A link does not validate.
    Invalid(String),
}

/// Reads the issuer of `cert` from the repository copy.
fn read_issuer(cert: &Cert, repo: &Path) -> Result<Cert, ChainError> {
    let file =
        issuer_file(cert, repo).ok_or_else(|| ChainError::Invalid("no CA issuer URI".into()))?;
    let bytes = std::fs::read(&file)
        .map_err(|e| ChainError::Missing(format!("issuer {}: {e}", file.display())))?;
    Cert::decode(bytes.as_slice())
        .map_err(|e| ChainError::Invalid(format!("issuer {}: {e}", file.display())))
}

/// The latest start of validity along the chain above `cert` (itself included): the
/// first instant at which every link can be valid at once.
fn latest_start(cert: &Cert, repo: &Path) -> Time {
    let mut t = cert.validity().not_before();
    let mut c = cert.clone();
    for _ in 0..32 {
        if c.is_self_signed() {
            break;
        }
        let Ok(issuer) = read_issuer(&c, repo) else {
            break;
        };
        t = t.max(issuer.validity().not_before());
        c = issuer;
    }
    t
}

/// Where a certificate's issuer lives in a repository copy.
fn issuer_file(cert: &Cert, repo: &Path) -> Option<PathBuf> {
    let uri = cert.ca_issuer()?;
    Some(
        repo.join(uri.authority())
            .join(uri.module_name())
            .join(uri.path()),
    )
}

/// Validates `cert` as a CA certificate up to a self-signed trust anchor in `repo`,
/// at `at`. Returns the validated certificate and the chain's subjects.
///
/// With `tals`, the trust anchor must be one of theirs (its key the TAL's); without, any
/// self-signed certificate ends the chain (and the chain says it was not pinned).
fn ca_chain(
    cert: Cert,
    repo: &Path,
    at: Time,
    depth: usize,
    tals: &[Tal],
) -> Result<(ResourceCert, Vec<String>), ChainError> {
    if depth > 32 {
        return Err(ChainError::Invalid(
            "certificate chain longer than 32".into(),
        ));
    }
    let name = format!("SKI {}", cert.subject_key_identifier());
    if cert.is_self_signed() {
        let (info, pinned) = if tals.is_empty() {
            (
                TalInfo::from_name("local".into()).into_arc(),
                "not pinned: no TAL",
            )
        } else {
            let tal = tals
                .iter()
                .find(|t| t.key_info() == cert.subject_public_key_info())
                .ok_or_else(|| {
                    ChainError::Invalid(format!("trust anchor {name}: no TAL has its key"))
                })?;
            (tal.info().clone(), "pinned by its TAL")
        };
        let rc = cert
            .validate_ta_at(info, false, at)
            .map_err(|e| ChainError::Invalid(format!("trust anchor {name}: {e}")))?;
        return Ok((rc, vec![format!("{name} (trust anchor, {pinned})")]));
    }
    let issuer = read_issuer(&cert, repo)?;
    let (issuer_rc, mut chain) = ca_chain(issuer, repo, at, depth + 1, tals)?;
    let rc = cert
        .validate_ca_at(&issuer_rc, false, at)
        .map_err(|e| ChainError::Invalid(format!("{name}: {e}")))?;
    chain.insert(0, name);
    Ok((rc, chain))
}

/// Validates a signed object (its CMS signature and EE certificate) with its issuer
/// chain from `repo`, at `at`.
fn signed_chain(
    bytes: &[u8],
    ee: &Cert,
    repo: &Path,
    at: Time,
    tals: &[Tal],
) -> Result<Vec<String>, ChainError> {
    let issuer = read_issuer(ee, repo)?;
    let (issuer_rc, chain) = ca_chain(issuer, repo, at, 0, tals)?;
    let obj = SignedObject::decode(bytes, false).map_err(|e| ChainError::Invalid(e.to_string()))?;
    obj.validate_at(&issuer_rc, false, at)
        .map_err(|e| ChainError::Invalid(format!("signed object: {e}")))?;
    Ok(chain)
}

/// Inspects one file; `repo`: a repository copy to find issuers in; `tals`: the trust
/// anchors its chain must end at (none: any self-signed certificate).
pub fn inspect(path: &Path, repo: Option<&Path>, tals: &[Tal]) -> Inspection {
    let kind = kind_of(path);
    let mut out = Inspection {
        file: path.to_path_buf(),
        kind,
        decoded: false,
        strict: None,
        error: None,
        content: serde_json::Value::Null,
        valid_from: None,
        valid_until: None,
        signature: "unchecked",
        detail: None,
        chain: Vec::new(),
    };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            out.error = Some(e.to_string());
            return out;
        }
    };
    // The EE (or own) certificate, for validity and the chain.
    let decoded = decode_kind(kind, &bytes);
    let (content, cert) = match decoded {
        Ok(x) => x,
        Err(e) => {
            out.error = Some(e);
            out.signature = "invalid";
            return out;
        }
    };
    out.decoded = true;
    out.content = content;
    let strict = match kind {
        "roa" => Roa::decode(bytes.as_slice(), true)
            .err()
            .map(|e| e.to_string()),
        "aspa" => Aspa::decode(bytes.as_slice(), true)
            .err()
            .map(|e| e.to_string()),
        "manifest" => Manifest::decode(bytes.as_slice(), true)
            .err()
            .map(|e| e.to_string()),
        _ => None,
    };
    out.strict = strict;
    let Some(cert) = cert else {
        out.detail = Some(
            "CRL signatures are checked against their issuer by relying parties; not here".into(),
        );
        return out;
    };
    let validity = cert.validity();
    out.valid_from = Some(time(validity.not_before()));
    out.valid_until = Some(time(validity.not_after()));
    let Some(repo) = repo else {
        out.detail = Some("no issuer to check against: give --repo DIR".into());
        return out;
    };
    let check = |at: Time| -> Result<Vec<String>, ChainError> {
        if kind == "certificate" {
            ca_chain(cert.clone(), repo, at, 0, tals).map(|(_, c)| c)
        } else {
            signed_chain(&bytes, &cert, repo, at, tals)
        }
    };
    match check(Time::now()) {
        Ok(chain) => {
            out.signature = "valid";
            out.chain = chain;
        }
        Err(ChainError::Missing(why)) => {
            out.detail = Some(format!("not in the repository copy: {why}"));
        }
        Err(ChainError::Invalid(now)) => {
            // An archived object: valid when it was current, at the first instant its
            // whole chain was valid?
            let issued = Time::new(*latest_start(&cert, repo) + chrono::Duration::seconds(1));
            match check(issued) {
                Ok(chain) => {
                    out.signature = "valid-when-issued";
                    out.chain = chain;
                    out.detail = Some(format!("now: {now}"));
                }
                Err(ChainError::Invalid(e) | ChainError::Missing(e)) => {
                    out.signature = "invalid";
                    out.detail = Some(e);
                }
            }
        }
    }
    out
}

/// What an object of `kind` asserts, and its EE (or own) certificate (none for a CRL).
fn decode_kind(kind: &str, bytes: &[u8]) -> Result<(serde_json::Value, Option<Cert>), String> {
    match kind {
    "roa" => Roa::decode(bytes, false)
        .map(|r| {
            let c = r.content();
            let prefixes: Vec<String> = c
                .iter()
                .map(|p| format!("{}/{}-{}", p.address(), p.address_length(), p.max_length()))
                .collect();
            (
                serde_json::json!({ "asn": c.as_id().into_u32(), "prefixes": prefixes }),
                Some(r.cert().clone()),
            )
        })
        .map_err(|e| e.to_string()),
    "aspa" => Aspa::decode(bytes, false)
        .map(|a| {
            let c = a.content();
            let providers: Vec<u32> = c.provider_as_set().iter().map(|p| p.into_u32()).collect();
            (
                serde_json::json!({ "customer": c.customer_as().into_u32(), "providers": providers }),
                Some(a.cert().clone()),
            )
        })
        .map_err(|e| e.to_string()),
    "manifest" => Manifest::decode(bytes, false)
        .map(|m| {
            let c = m.content();
            (
                serde_json::json!({
                    "number": c.manifest_number().to_string(),
                    "this_update": time(c.this_update()),
                    "next_update": time(c.next_update()),
                    "files": c.len(),
                }),
                Some(m.cert().clone()),
            )
        })
        .map_err(|e| e.to_string()),
    "certificate" => Cert::decode(bytes)
        .map(|c| {
            (
                serde_json::json!({
                    "ski": c.subject_key_identifier().to_string(),
                    "self_signed": c.is_self_signed(),
                    "ca_issuer": c.ca_issuer().map(|u| u.to_string()),
                }),
                Some(c),
            )
        })
        .map_err(|e| e.to_string()),
    "crl" => Crl::decode(bytes)
        .map(|c| {
            (
                serde_json::json!({
                    "this_update": time(c.this_update()),
                    "next_update": time(c.next_update()),
                }),
                None,
            )
        })
        .map_err(|e| e.to_string()),
    _ => Err("not a kind of object read here (.roa, .asa, .mft, .cer, .crl)".into()),
}
}

/// Reads TAL files (RFC 8630).
pub fn read_tals(paths: &[PathBuf]) -> Result<Vec<Tal>, String> {
    paths
        .iter()
        .map(|p| {
            let mut f = std::fs::File::open(p).map_err(|e| format!("{}: {e}", p.display()))?;
            Tal::read(p, &mut f).map_err(|e| format!("{}: {e}", p.display()))
        })
        .collect()
}

/// What a repository copy asserts: the payloads of its ROAs and ASPAs that validate now.
#[derive(Debug, Default)]
pub struct RepoScan {
    pub vrps: Vec<crate::rpki::Vrp>,
    pub aspas: Vec<crate::rpki::Aspa>,
    /// ROAs and ASPAs found.
    pub objects: usize,
    /// Those that validated (their payloads are above).
    pub accepted: usize,
    /// Those that did not, and why.
    pub rejected: Vec<(PathBuf, String)>,
}

/// Whether the CRL the EE certificate names (in the repository copy, signed by the
/// issuer) lists it. A missing or unreadable CRL rejects the object, as RFC 6487 §4.8.6
/// relying parties do.
fn check_crl(ee: &Cert, issuer: &ResourceCert, repo: &Path) -> Result<(), String> {
    let uri = ee.crl_uri().ok_or("the EE certificate names no CRL")?;
    let file = repo
        .join(uri.authority())
        .join(uri.module_name())
        .join(uri.path());
    let bytes = std::fs::read(&file).map_err(|e| format!("CRL {}: {e}", file.display()))?;
    let crl = Crl::decode(bytes.as_slice()).map_err(|e| format!("CRL {}: {e}", file.display()))?;
    crl.verify_signature(issuer.subject_public_key_info())
        .map_err(|e| format!("CRL {}: {e}", file.display()))?;
    if crl.contains(ee.serial_number()) {
        return Err(format!("revoked by {}", file.display()));
    }
    Ok(())
}

/// The payloads of one ROA or ASPA, validated now: CMS signature, EE certificate,
/// resources within the EE certificate's, not revoked, chain up to a trust anchor (one of
/// `tals` when given).
fn validate_object(
    path: &Path,
    repo: &Path,
    tals: &[Tal],
) -> Result<(Vec<crate::rpki::Vrp>, Option<crate::rpki::Aspa>), String> {
    use crate::model::Asn;
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let now = Time::now();
    let chain_err = |e: ChainError| match e {
        ChainError::Missing(m) => format!("not in the repository copy: {m}"),
        ChainError::Invalid(m) => m,
    };
    let issuer_of = |ee: &Cert| -> Result<ResourceCert, String> {
        let issuer = read_issuer(ee, repo).map_err(chain_err)?;
        ca_chain(issuer, repo, now, 0, tals)
            .map(|(rc, _)| rc)
            .map_err(chain_err)
    };
    let ta_name = |rc: &ResourceCert| rc.tal().name().to_string();
    let expires = |rc: &ResourceCert| Some(rc.validity().not_after().timestamp());
    match kind_of(path) {
        "roa" => {
            let roa = Roa::decode(bytes.as_slice(), false).map_err(|e| e.to_string())?;
            let issuer = issuer_of(roa.cert())?;
            let mut crl = Ok(());
            let (ee, content) = roa
                .process(&issuer, false, |ee| {
                    crl = check_crl(ee, &issuer, repo);
                    Ok(())
                })
                .map_err(|e| e.to_string())?;
            crl?;
            let asn = Asn(content.as_id().into_u32());
            let mut vrps = Vec::new();
            for a in content.iter() {
                let prefix = ipnet::IpNet::new(a.address(), a.address_length())
                    .map_err(|e| e.to_string())?;
                vrps.push(crate::rpki::Vrp {
                    prefix,
                    max_length: a.max_length(),
                    asn,
                    ta: Some(ta_name(&ee)),
                    expires: expires(&ee),
                });
            }
            Ok((vrps, None))
        }
        "aspa" => {
            let aspa = Aspa::decode(bytes.as_slice(), false).map_err(|e| e.to_string())?;
            let issuer = issuer_of(aspa.cert())?;
            let mut crl = Ok(());
            let (ee, content) = aspa
                .process(&issuer, false, |ee| {
                    crl = check_crl(ee, &issuer, repo);
                    Ok(())
                })
                .map_err(|e| e.to_string())?;
            crl?;
            let mut providers: Vec<Asn> = content
                .provider_as_set()
                .iter()
                .map(|p| Asn(p.into_u32()))
                .collect();
            providers.sort();
            providers.dedup();
            Ok((
                Vec::new(),
                Some(crate::rpki::Aspa {
                    customer: Asn(content.customer_as().into_u32()),
                    providers,
                    afi: None,
                    expires: expires(&ee),
                }),
            ))
        }
        _ => Ok((Vec::new(), None)),
    }
}

/// Reads every `.roa` and `.asa` under `repo` (a repository copy laid out by rsync URI)
/// and keeps the payloads of those that validate now (see `validate_object`). Never
/// fails: an object that does not read or validate is listed with the reason.
pub fn scan_repository(repo: &Path, tals: &[Tal]) -> RepoScan {
    let mut files = Vec::new();
    let mut dirs = vec![repo.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => dirs.push(p),
                Ok(_) if matches!(kind_of(&p), "roa" | "aspa") => files.push(p),
                _ => {}
            }
        }
    }
    files.sort();
    let mut scan = RepoScan {
        objects: files.len(),
        ..RepoScan::default()
    };
    for f in files {
        match validate_object(&f, repo, tals) {
            Ok((vrps, aspa)) => {
                scan.accepted += 1;
                scan.vrps.extend(vrps);
                scan.aspas.extend(aspa);
            }
            Err(e) => scan.rejected.push((f, e)),
        }
    }
    scan
}
