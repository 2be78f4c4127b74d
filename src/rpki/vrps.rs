//! Validated ROA payloads (VRPs) and ASPA records, and loading them from the exports of
//! rpki-client, Routinator and StayRTR.
//!
//! Formats (auto-detected, or forced with [`VrpFormat`]):
//! - rpki-client `json`: `roas[] {asn: 13335, prefix, maxLength, ta, expires}`, ASPA as
//!   `aspas[] {customer_asid, expires, providers}` (8.x+) or the older
//!   `provider_authorizations {ipv4[], ipv6[]}`.
//! - Routinator `json` / `jsonext`: `"asn": "AS13335"`, `aspas[] {customer, providers}`;
//!   jsonext carries `source[]` whose `chainValidity.notAfter` becomes `expires`.
//! - StayRTR / GoRTR JSON: the rpki-client layout with either kind of `asn`; FORT's
//!   `--output.format=json` (`roas[] {asn: "AS..", prefix, maxLength}`, no metadata) is
//!   this minimal layout too, and reads as it.
//! - A bare JSON list of `{prefix, maxLength, asn}` (as rpki-validator exports).
//! - CSV: rpki-client `ASN,IP Prefix,Max Length,Trust Anchor,Expires`, Routinator
//!   `ASN,IP Prefix,Max Length,Trust Anchor`, Routinator `csvext`
//!   `URI,ASN,IP Prefix,Max Length,Not Before,Not After`, FORT's `ASN,Prefix,Max prefix
//!   length`, and headerless
//!   `asn,prefix,maxlen[,...]`.
//!
//! A malformed entry rejects the file with its position (JSON entry index or CSV line);
//! with `skip_invalid` it is skipped and reported as a warning instead. JSON that does
//! not parse at all is always rejected (with line and column).

use crate::input;
use crate::model::Asn;
use ipnet::IpNet;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

/// One validated ROA payload.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Vrp {
    pub prefix: IpNet,
    pub max_length: u8,
    pub asn: Asn,
    /// Trust anchor name, when the export gives one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ta: Option<String>,
    /// Unix time after which the payload is no longer valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<i64>,
}

/// Address family an ASPA applies to (the older rpki-client layout splits them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AspaAfi {
    Ipv4,
    Ipv6,
}

/// One validated ASPA payload: `customer` authorises `providers` as its upstreams.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Aspa {
    pub customer: Asn,
    /// Sorted, deduplicated.
    pub providers: Vec<Asn>,
    /// `None`: both families.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub afi: Option<AspaAfi>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<i64>,
}

/// The export formats understood.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum VrpFormat {
    Auto,
    RpkiClientJson,
    RoutinatorJson,
    RoutinatorJsonext,
    StayrtrJson,
    RpkiClientCsv,
    RoutinatorCsv,
}

impl VrpFormat {
    fn is_csv(self) -> bool {
        matches!(self, VrpFormat::RpkiClientCsv | VrpFormat::RoutinatorCsv)
    }
}

/// A set of VRPs and ASPAs as loaded from one file.
#[derive(Clone, Debug, Default, Serialize)]
pub struct VrpSet {
    pub vrps: Vec<Vrp>,
    pub aspas: Vec<Aspa>,
    /// Entries skipped under `skip_invalid`, with their position and reason.
    pub warnings: Vec<String>,
    pub source: Option<SourceInfo>,
}

/// Where a [`VrpSet`] came from.
#[derive(Clone, Debug, Serialize)]
pub struct SourceInfo {
    pub path: PathBuf,
    /// The format detected (or forced).
    pub format: VrpFormat,
    /// Build time stated in the file (`metadata.buildtime` / `generated`), Unix seconds.
    pub generated: Option<i64>,
}

/// Why a VRP file was rejected.
#[derive(Debug, thiserror::Error)]
pub enum VrpError {
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not valid JSON: {source}", .path.display())]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{}: {position}: {reason}", .path.display())]
    Entry {
        path: PathBuf,
        position: String,
        reason: String,
    },
    #[error("{}: {message}", .path.display())]
    Format { path: PathBuf, message: String },
}

/// How to load.
#[derive(Clone, Copy, Debug)]
pub struct LoadOptions {
    pub format: VrpFormat,
    /// Skip malformed entries with a warning instead of rejecting the file.
    pub skip_invalid: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            format: VrpFormat::Auto,
            skip_invalid: false,
        }
    }
}

/// Loads a VRP export (plain, gzip or bzip2).
/// The set as rpki-client's `json` output, which StayRTR reads (`roas` and
/// `provider_authorizations`; without `expires`, which StayRTR enforces against the
/// current time, when `expires` is false). For serving a snapshot to a real cache in
/// tests and benchmarks.
pub fn to_rpki_client_json(set: &VrpSet, buildtime: &str, expires: bool) -> String {
    let roas: Vec<serde_json::Value> = set
        .vrps
        .iter()
        .map(|v| {
            let mut o = serde_json::json!({
                "prefix": v.prefix.to_string(),
                "maxLength": v.max_length,
                "asn": v.asn.0,
                "ta": v.ta.clone().unwrap_or_default(),
            });
            if let (true, Some(e)) = (expires, v.expires) {
                o["expires"] = e.into();
            }
            o
        })
        .collect();
    let (mut v4, mut v6) = (Vec::new(), Vec::new());
    for a in &set.aspas {
        let o = serde_json::json!({
            "customer_asid": a.customer.0,
            "providers": a.providers.iter().map(|p| p.0).collect::<Vec<_>>(),
        });
        match a.afi {
            Some(AspaAfi::Ipv4) => v4.push(o),
            Some(AspaAfi::Ipv6) => v6.push(o),
            None => {
                v4.push(o.clone());
                v6.push(o);
            }
        }
    }
    serde_json::json!({
        "metadata": { "buildtime": buildtime, "vrps": set.vrps.len() },
        "roas": roas,
        "provider_authorizations": { "ipv4": v4, "ipv6": v6 },
    })
    .to_string()
}

pub fn load(path: &Path, opts: LoadOptions) -> Result<VrpSet, VrpError> {
    let bytes = input::read_all(path).map_err(|source| VrpError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&bytes, path, opts)
}

/// Parses a VRP export held in memory; `path` is only used in messages.
pub fn parse(bytes: &[u8], path: &Path, opts: LoadOptions) -> Result<VrpSet, VrpError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
    let looks_json = matches!(first, Some(b'{') | Some(b'['));
    let mut set = if opts.format.is_csv() || (opts.format == VrpFormat::Auto && !looks_json) {
        if looks_json {
            return Err(format_error(
                path,
                "file is JSON but a CSV format was given",
            ));
        }
        parse_csv(bytes, path, opts)?
    } else {
        if !looks_json {
            return Err(format_error(
                path,
                "file is not JSON (first byte is not '{' or '[') but a JSON format was given",
            ));
        }
        parse_json(bytes, path, opts)?
    };
    if let Some(src) = &mut set.source {
        if opts.format != VrpFormat::Auto && src.format != opts.format {
            // The JSON dialects differ only in spelling; accept what was asked but say so.
            tracing::debug!(
                "{}: looks like {:?}, read as {:?}",
                path.display(),
                src.format,
                opts.format
            );
            src.format = opts.format;
        }
    }
    Ok(set)
}

fn format_error(path: &Path, message: &str) -> VrpError {
    VrpError::Format {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// An ASN written as a number or as a string `"AS123"`/`"123"`.
#[derive(Clone, Debug)]
enum AsnField {
    Num(u64),
    Text(String),
}

impl AsnField {
    fn resolve(&self) -> Result<Asn, String> {
        match self {
            AsnField::Num(n) => u32::try_from(*n)
                .map(Asn)
                .map_err(|_| format!("AS number {n} is larger than 32 bits")),
            AsnField::Text(s) => s.parse::<Asn>().map_err(|e| e.to_string()),
        }
    }
    fn is_text(&self) -> bool {
        matches!(self, AsnField::Text(_))
    }
}

impl<'de> Deserialize<'de> for AsnField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AsnField;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an AS number (123 or \"AS123\")")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<AsnField, E> {
                Ok(AsnField::Num(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<AsnField, E> {
                Ok(AsnField::Text(v.to_string()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<AsnField, E> {
                Ok(AsnField::Text(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
struct JsonDoc {
    #[serde(default)]
    metadata: Option<JsonMeta>,
    #[serde(default)]
    roas: Vec<JsonRoa>,
    #[serde(default)]
    aspas: Vec<JsonAspa>,
    #[serde(default)]
    provider_authorizations: Option<ProviderAuthorizations>,
}

#[derive(Deserialize, Default)]
struct JsonMeta {
    #[serde(default)]
    buildtime: Option<String>,
    #[serde(default)]
    generated: Option<i64>,
    #[serde(default, rename = "generatedTime")]
    generated_time: Option<String>,
    #[serde(default)]
    counts: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct JsonRoa {
    asn: AsnField,
    prefix: String,
    #[serde(default, rename = "maxLength")]
    max_length: Option<u64>,
    #[serde(default)]
    ta: Option<String>,
    #[serde(default)]
    expires: Option<i64>,
    #[serde(default)]
    source: Option<Vec<ExtSource>>,
}

#[derive(Deserialize)]
struct ExtSource {
    #[serde(default)]
    tal: Option<String>,
    #[serde(default)]
    validity: Option<ExtValidity>,
    #[serde(default, rename = "chainValidity")]
    chain_validity: Option<ExtValidity>,
}

#[derive(Deserialize)]
struct ExtValidity {
    #[serde(default, rename = "notAfter")]
    not_after: Option<String>,
}

#[derive(Deserialize)]
struct JsonAspa {
    #[serde(default)]
    customer_asid: Option<AsnField>,
    #[serde(default)]
    customer: Option<AsnField>,
    #[serde(default)]
    providers: Vec<AsnField>,
    #[serde(default)]
    expires: Option<i64>,
    #[serde(default)]
    source: Option<Vec<ExtSource>>,
}

#[derive(Deserialize)]
struct ProviderAuthorizations {
    #[serde(default)]
    ipv4: Vec<JsonAspa>,
    #[serde(default)]
    ipv6: Vec<JsonAspa>,
}

fn rfc3339_secs(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp())
}

/// jsonext: a payload is valid while any of its sources is; take the latest end.
fn ext_expires(sources: &Option<Vec<ExtSource>>) -> Option<i64> {
    sources
        .as_ref()?
        .iter()
        .filter_map(|s| {
            s.chain_validity
                .as_ref()
                .or(s.validity.as_ref())
                .and_then(|v| v.not_after.as_deref())
                .and_then(rfc3339_secs)
        })
        .max()
}

fn parse_json(bytes: &[u8], path: &Path, opts: LoadOptions) -> Result<VrpSet, VrpError> {
    let json_err = |source| VrpError::Json {
        path: path.to_path_buf(),
        source,
    };
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
    let doc: JsonDoc = if first == Some(b'[') {
        JsonDoc {
            metadata: None,
            roas: serde_json::from_slice(bytes).map_err(json_err)?,
            aspas: Vec::new(),
            provider_authorizations: None,
        }
    } else {
        serde_json::from_slice(bytes).map_err(json_err)?
    };

    let meta = doc.metadata.unwrap_or_default();
    let has_ext = doc.roas.iter().any(|r| r.source.is_some());
    let text_asn = doc.roas.first().map(|r| r.asn.is_text()).unwrap_or(false);
    let format = if has_ext {
        VrpFormat::RoutinatorJsonext
    } else if meta.buildtime.is_some() || !text_asn {
        VrpFormat::RpkiClientJson
    } else if meta.counts.is_some() || meta.generated_time.is_none() {
        VrpFormat::StayrtrJson
    } else {
        VrpFormat::RoutinatorJson
    };
    let generated = meta
        .buildtime
        .as_deref()
        .and_then(rfc3339_secs)
        .or(meta.generated)
        .or_else(|| meta.generated_time.as_deref().and_then(rfc3339_secs));

    let mut set = VrpSet {
        source: Some(SourceInfo {
            path: path.to_path_buf(),
            format,
            generated,
        }),
        ..VrpSet::default()
    };
    set.vrps.reserve(doc.roas.len());
    for (i, roa) in doc.roas.into_iter().enumerate() {
        let expires = roa.expires.or_else(|| ext_expires(&roa.source));
        let ta = roa.ta.or_else(|| {
            roa.source
                .as_ref()
                .and_then(|s| s.iter().find_map(|s| s.tal.clone()))
        });
        match make_vrp(&roa.asn, &roa.prefix, roa.max_length, ta, expires) {
            Ok(v) => set.vrps.push(v),
            Err(reason) => entry_problem(&mut set, path, format!("roas[{i}]"), reason, opts)?,
        }
    }
    let mut aspa_lists: Vec<(&str, Option<AspaAfi>, Vec<JsonAspa>)> =
        vec![("aspas", None, doc.aspas)];
    if let Some(pa) = doc.provider_authorizations {
        aspa_lists.push(("provider_authorizations.ipv4", Some(AspaAfi::Ipv4), pa.ipv4));
        aspa_lists.push(("provider_authorizations.ipv6", Some(AspaAfi::Ipv6), pa.ipv6));
    }
    for (name, afi, list) in aspa_lists {
        for (i, a) in list.into_iter().enumerate() {
            match make_aspa(&a, afi) {
                Ok(v) => set.aspas.push(v),
                Err(reason) => entry_problem(&mut set, path, format!("{name}[{i}]"), reason, opts)?,
            }
        }
    }
    Ok(set)
}

fn entry_problem(
    set: &mut VrpSet,
    path: &Path,
    position: String,
    reason: String,
    opts: LoadOptions,
) -> Result<(), VrpError> {
    if opts.skip_invalid {
        set.warnings.push(format!("{position}: {reason} (skipped)"));
        Ok(())
    } else {
        Err(VrpError::Entry {
            path: path.to_path_buf(),
            position,
            reason,
        })
    }
}

fn make_vrp(
    asn: &AsnField,
    prefix: &str,
    max_length: Option<u64>,
    ta: Option<String>,
    expires: Option<i64>,
) -> Result<Vrp, String> {
    let asn = asn.resolve()?;
    let net: IpNet = prefix
        .trim()
        .parse()
        .map_err(|_| format!("not a prefix: {prefix:?}"))?;
    if net.trunc() != net {
        return Err(format!("prefix {prefix} has host bits set"));
    }
    let max = u64::from(net.max_prefix_len());
    let max_length = max_length.unwrap_or(u64::from(net.prefix_len()));
    if max_length < u64::from(net.prefix_len()) || max_length > max {
        return Err(format!(
            "maxLength {max_length} outside {}..={max} for {net}",
            net.prefix_len()
        ));
    }
    Ok(Vrp {
        prefix: net,
        max_length: max_length as u8,
        asn,
        ta,
        expires,
    })
}

fn make_aspa(a: &JsonAspa, afi: Option<AspaAfi>) -> Result<Aspa, String> {
    let customer = a
        .customer_asid
        .as_ref()
        .or(a.customer.as_ref())
        .ok_or_else(|| "ASPA without customer_asid/customer".to_string())?
        .resolve()?;
    let mut providers = a
        .providers
        .iter()
        .map(AsnField::resolve)
        .collect::<Result<Vec<_>, _>>()?;
    providers.sort_unstable();
    providers.dedup();
    Ok(Aspa {
        customer,
        providers,
        afi,
        expires: a.expires.or_else(|| ext_expires(&a.source)),
    })
}

/// Column positions of a CSV dialect.
struct CsvColumns {
    asn: usize,
    prefix: usize,
    max_length: usize,
    ta: Option<usize>,
    expires: Option<usize>,
    /// csvext's `Not After` is an RFC 3339 time, not Unix seconds.
    expires_rfc3339: bool,
}

fn parse_csv(bytes: &[u8], path: &Path, opts: LoadOptions) -> Result<VrpSet, VrpError> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(bytes);
    let mut set = VrpSet::default();
    let mut cols: Option<CsvColumns> = None;
    let mut format = VrpFormat::RoutinatorCsv;
    let mut record = csv::StringRecord::new();
    loop {
        match rdr.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let position = e
                    .position()
                    .map(|p| format!("line {}", p.line()))
                    .unwrap_or_else(|| "?".into());
                entry_problem(&mut set, path, position, e.to_string(), opts)?;
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    break;
                }
                continue;
            }
        }
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        if record.iter().all(str::is_empty) {
            continue;
        }
        let c = match &cols {
            Some(c) => c,
            None => {
                let (c, header, fmt) = csv_columns(&record);
                format = fmt;
                cols = Some(c);
                if header {
                    continue;
                }
                cols.as_ref().expect("just set")
            }
        };
        let field = |i: usize| record.get(i).unwrap_or("");
        let result = (|| {
            let max_length = match field(c.max_length) {
                "" => None,
                s => Some(
                    s.parse::<u64>()
                        .map_err(|_| format!("not a max length: {s:?}"))?,
                ),
            };
            let expires = match c.expires.map(field) {
                None | Some("") => None,
                Some(s) if c.expires_rfc3339 => {
                    Some(rfc3339_secs(s).ok_or_else(|| format!("not an RFC 3339 time: {s:?}"))?)
                }
                Some(s) => Some(
                    s.parse::<i64>()
                        .map_err(|_| format!("not a Unix time: {s:?}"))?,
                ),
            };
            let ta =
                c.ta.map(field)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string);
            make_vrp(
                &AsnField::Text(field(c.asn).to_string()),
                field(c.prefix),
                max_length,
                ta,
                expires,
            )
        })();
        match result {
            Ok(v) => set.vrps.push(v),
            Err(reason) => entry_problem(&mut set, path, format!("line {line}"), reason, opts)?,
        }
    }
    if cols.is_none() {
        return Err(format_error(path, "CSV file has no records"));
    }
    set.source = Some(SourceInfo {
        path: path.to_path_buf(),
        format,
        generated: None,
    });
    Ok(set)
}

/// Works out the dialect from the first record: a header names the columns; a record whose
/// first field is an ASN is headerless `asn,prefix,maxlen[,ta]`.
fn csv_columns(first: &csv::StringRecord) -> (CsvColumns, bool, VrpFormat) {
    let names: Vec<String> = first.iter().map(|s| s.to_ascii_lowercase()).collect();
    let find = |want: &[&str]| names.iter().position(|n| want.contains(&n.as_str()));
    if let (Some(asn), Some(prefix)) = (find(&["asn"]), find(&["ip prefix", "prefix"])) {
        // "Max prefix length": FORT's header.
        let max_length = find(&["max length", "maxlength", "max_length", "max prefix length"])
            .unwrap_or(usize::MAX);
        let not_after = find(&["not after"]);
        let expires = find(&["expires"]);
        let format = if expires.is_some() {
            VrpFormat::RpkiClientCsv
        } else {
            VrpFormat::RoutinatorCsv
        };
        return (
            CsvColumns {
                asn,
                prefix,
                max_length,
                ta: find(&["trust anchor", "ta", "tal"]),
                expires: expires.or(not_after),
                expires_rfc3339: expires.is_none() && not_after.is_some(),
            },
            true,
            format,
        );
    }
    (
        CsvColumns {
            asn: 0,
            prefix: 1,
            max_length: 2,
            ta: None,
            expires: None,
            expires_rfc3339: false,
        },
        false,
        VrpFormat::RoutinatorCsv,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<VrpSet, VrpError> {
        parse(s.as_bytes(), Path::new("t"), LoadOptions::default())
    }

    #[test]
    fn rpki_client_json_with_aspas_both_layouts() {
        let set = p(r#"{"metadata":{"buildtime":"2025-07-20T09:31:33Z"},
            "roas":[{"asn":13335,"prefix":"1.0.0.0/24","maxLength":24,"ta":"apnic","expires":1753453058}],
            "aspas":[{"customer_asid":945,"expires":1753070425,"providers":[150369,13213]}],
            "provider_authorizations":{"ipv6":[{"customer_asid":28,"providers":[1]}]}}"#)
        .unwrap();
        let src = set.source.unwrap();
        assert_eq!(src.format, VrpFormat::RpkiClientJson);
        assert_eq!(src.generated, Some(1_753_003_893));
        assert_eq!(set.vrps[0].asn, Asn(13335));
        assert_eq!(set.vrps[0].expires, Some(1_753_453_058));
        assert_eq!(set.aspas[0].providers, vec![Asn(13213), Asn(150369)]);
        assert_eq!(set.aspas[1].afi, Some(AspaAfi::Ipv6));
    }

    #[test]
    fn routinator_jsonext_takes_expiry_from_chain_validity() {
        let set = p(r#"{"metadata":{"generated":0,"generatedTime":"1970-01-01T00:00:00Z"},
          "roas":[{"asn":"AS1234","prefix":"12.34.56.0/24","maxLength":24,"source":[
            {"type":"roa","uri":"rsync://x/a.roa","tal":"ripe","validity":{"notBefore":"2024-01-01T00:00:00Z","notAfter":"2024-06-01T00:00:00Z"},
             "chainValidity":{"notBefore":"2024-01-01T00:00:00Z","notAfter":"2024-03-01T00:00:00Z"}}]}],
          "aspas":[{"customer":"AS1234","providers":["AS2","AS1"],"source":[{"type":"exception","path":null}]}]}"#)
        .unwrap();
        assert_eq!(set.source.unwrap().format, VrpFormat::RoutinatorJsonext);
        assert_eq!(set.vrps[0].expires, rfc3339_secs("2024-03-01T00:00:00Z"));
        assert_eq!(set.vrps[0].ta.as_deref(), Some("ripe"));
        assert_eq!(set.aspas[0].customer, Asn(1234));
    }

    #[test]
    fn bad_entry_rejected_with_position_or_skipped() {
        let doc = r#"{"roas":[{"asn":"AS1","prefix":"10.0.0.0/8","maxLength":8},
                               {"asn":"AS1","prefix":"10.0.0.0/8","maxLength":33}]}"#;
        let err = p(doc).unwrap_err().to_string();
        assert!(
            err.contains("roas[1]") && err.contains("maxLength 33"),
            "{err}"
        );
        let set = parse(
            doc.as_bytes(),
            Path::new("t"),
            LoadOptions {
                skip_invalid: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(set.vrps.len(), 1);
        assert_eq!(set.warnings.len(), 1);
    }

    /// Each refused with the entry it is in and what is wrong with it.
    #[test]
    fn host_bits_and_big_asn_rejected() {
        let ok = r#"{"asn":1,"prefix":"10.0.0.0/8","maxLength":8}"#;
        for (bad, why) in [
            (
                r#"{"asn":1,"prefix":"10.0.0.1/8","maxLength":8}"#,
                "10.0.0.1/8",
            ),
            (
                r#"{"asn":4294967296,"prefix":"10.0.0.0/8","maxLength":8}"#,
                "4294967296",
            ),
            (r#"{"asn":-1,"prefix":"10.0.0.0/8","maxLength":8}"#, "-1"),
        ] {
            let doc = format!(r#"{{"roas":[{ok},{bad}]}}"#);
            let err = p(&doc).unwrap_err().to_string();
            assert!(err.contains("roas[1]") && err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn csv_dialects() {
        let rc = p("ASN,IP Prefix,Max Length,Trust Anchor,Expires\nAS65002,198.51.100.0/24,24,TA,1796218220\n").unwrap();
        assert_eq!(rc.source.as_ref().unwrap().format, VrpFormat::RpkiClientCsv);
        assert_eq!(rc.vrps[0].expires, Some(1_796_218_220));
        let rt = p("ASN,IP Prefix,Max Length,Trust Anchor\nAS13335,1.0.0.0/24,24,apnic\n").unwrap();
        assert_eq!(rt.source.as_ref().unwrap().format, VrpFormat::RoutinatorCsv);
        let ext = p("URI,ASN,IP Prefix,Max Length,Not Before,Not After\nrsync://x,AS1,10.0.0.0/8,8,2024-01-01T00:00:00Z,2024-02-01T00:00:00Z\n").unwrap();
        assert_eq!(ext.vrps[0].expires, rfc3339_secs("2024-02-01T00:00:00Z"));
        // FORT's header names the max length its own way.
        let fort = p("ASN,Prefix,Max prefix length\nAS1,10.0.0.0/8,24\n").unwrap();
        assert_eq!(fort.vrps[0].max_length, 24);
        let bare = p("16079,194.209.159.0/24,24,True\n").unwrap();
        assert_eq!(bare.vrps[0].asn, Asn(16079));
        let err = p("ASN,IP Prefix,Max Length\nAS1,10.0.0.0/8,8\nAS1,banana,8\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 3"), "{err}");
    }

    #[test]
    fn format_mismatch_is_an_error() {
        let r = parse(
            b"ASN,IP Prefix,Max Length\n",
            Path::new("t"),
            LoadOptions {
                format: VrpFormat::RoutinatorJson,
                skip_invalid: false,
            },
        );
        let err = r.unwrap_err().to_string();
        assert!(
            err.contains("not JSON") && err.contains("JSON format"),
            "{err}"
        );
    }
}
