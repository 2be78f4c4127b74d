//! A signed RPKI repository made for the tests, with the `rpki` crate's own builders and
//! software keys (RSA, aws-lc): a trust anchor, one CA under it, ROAs and an ASPA, laid
//! out by rsync URI as rpki-client's cache is, with a TAL. Made afresh by each test (keys
//! and validity from now), so nothing in it expires in the repository.
//!
//! The shared lab repository (rpkimancer) cannot serve: its ROAs and ASPA lack the CMS
//! signing-time attribute, which the `rpki` crate 0.20 requires (RFC 9589).
// Each test binary that includes this uses a part of it.
#![allow(dead_code)]

use rpki::crypto::softsigner::{KeyId, SoftSigner};
use rpki::crypto::{PublicKey, PublicKeyFormat, RpkiSignatureAlgorithm, Signer};
use rpki::repository::aspa::AspaBuilder;
use rpki::repository::cert::{KeyUsage, Overclaim, TbsCert};
use rpki::repository::crl::{CrlEntry, TbsCertList};
use rpki::repository::resources::{Asn, Prefix};
use rpki::repository::roa::RoaBuilder;
use rpki::repository::sigobj::SignedObjectBuilder;
use rpki::repository::x509::{Time, Validity};
use rpki::uri;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

const BASE: &str = "rsync://rpki.test.invalid/repo";

pub struct Repo {
    /// The repository copy (DIR/HOST/MODULE/PATH).
    pub dir: PathBuf,
    pub tal: PathBuf,
    /// A TAL of another key: nothing here chains to it.
    pub other_tal: PathBuf,
    signer: SoftSigner,
    ca_key: KeyId,
    ca_pub: PublicKey,
    next_serial: u64,
}

fn rsync(s: &str) -> uri::Rsync {
    uri::Rsync::from_str(s).expect("rsync URI")
}

fn file_of(dir: &Path, uri: &str) -> PathBuf {
    dir.join(uri.trim_start_matches("rsync://"))
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, bytes).expect("write object");
}

fn tal_text(key: &PublicKey, uri: &str) -> String {
    use base64::Engine;
    format!(
        "{uri}\n\n{}\n",
        base64::engine::general_purpose::STANDARD.encode(key.to_info_bytes())
    )
}

impl Repo {
    /// TA (all resources) -> CA (`prefixes`, ASNs `asns`) with an empty CRL, under
    /// `root`.
    pub fn new(root: &Path, prefixes: &[(Ipv4Addr, u8)], asns: (u32, u32)) -> Repo {
        let signer = SoftSigner::new();
        let ta_key = signer.create_key(PublicKeyFormat::Rsa).expect("TA key");
        let ta_pub = signer.get_key_info(&ta_key).expect("TA key info");
        let ca_key = signer.create_key(PublicKeyFormat::Rsa).expect("CA key");
        let ca_pub = signer.get_key_info(&ca_key).expect("CA key info");
        let dir = root.join("repo");
        let validity = Validity::from_secs(30 * 86400);

        let mut ta = TbsCert::new(
            1u64.into(),
            ta_pub.to_subject_name(),
            validity,
            None,
            ta_pub.clone(),
            KeyUsage::Ca,
            Overclaim::Refuse,
        );
        ta.set_basic_ca(Some(true));
        ta.set_ca_repository(Some(rsync(&format!("{BASE}/ta/"))));
        ta.set_rpki_manifest(Some(rsync(&format!("{BASE}/ta/ta.mft"))));
        ta.build_v4_resource_blocks(|b| b.push(Prefix::new(Ipv4Addr::UNSPECIFIED, 0)));
        ta.build_v6_resource_blocks(|b| b.push(Prefix::new(0u128, 0)));
        ta.build_as_resource_blocks(|b| b.push((Asn::MIN, Asn::MAX)));
        let ta = ta.into_cert(&signer, &ta_key).expect("TA cert");
        let ta_uri = format!("{BASE}/ta.cer");
        write(&file_of(&dir, &ta_uri), &ta.to_captured().into_bytes());
        // The TA's CRL (empty), which the CA certificate names.
        let ta_crl = TbsCertList::new(
            RpkiSignatureAlgorithm::default(),
            ta_pub.to_subject_name(),
            Time::now(),
            Time::tomorrow(),
            Vec::<CrlEntry>::new(),
            ta_pub.key_identifier(),
            1u64.into(),
        )
        .into_crl(&signer, &ta_key)
        .expect("TA CRL");
        write(
            &file_of(&dir, &format!("{BASE}/ta/ta.crl")),
            &ta_crl.to_captured().into_bytes(),
        );

        let mut ca = TbsCert::new(
            2u64.into(),
            ta_pub.to_subject_name(),
            validity,
            None,
            ca_pub.clone(),
            KeyUsage::Ca,
            Overclaim::Refuse,
        );
        ca.set_basic_ca(Some(true));
        ca.set_authority_key_identifier(Some(ta_pub.key_identifier()));
        ca.set_ca_issuer(Some(rsync(&ta_uri)));
        ca.set_crl_uri(Some(rsync(&format!("{BASE}/ta/ta.crl"))));
        ca.set_ca_repository(Some(rsync(&format!("{BASE}/ca/"))));
        ca.set_rpki_manifest(Some(rsync(&format!("{BASE}/ca/ca.mft"))));
        ca.build_v4_resource_blocks(|b| {
            for (a, l) in prefixes {
                b.push(Prefix::new(*a, *l));
            }
        });
        ca.build_as_resource_blocks(|b| b.push((Asn::from_u32(asns.0), Asn::from_u32(asns.1))));
        let ca = ca.into_cert(&signer, &ta_key).expect("CA cert");
        write(
            &file_of(&dir, &format!("{BASE}/ta/ca.cer")),
            &ca.to_captured().into_bytes(),
        );

        let tal = root.join("test.tal");
        std::fs::write(&tal, tal_text(&ta_pub, &ta_uri)).expect("TAL");
        let other = signer.create_key(PublicKeyFormat::Rsa).expect("other key");
        let other_pub = signer.get_key_info(&other).expect("other key info");
        let other_tal = root.join("other.tal");
        std::fs::write(&other_tal, tal_text(&other_pub, &ta_uri)).expect("other TAL");

        let mut repo = Repo {
            dir,
            tal,
            other_tal,
            signer,
            ca_key,
            ca_pub,
            next_serial: 100,
        };
        repo.revoke(&[]);
        repo
    }

    fn object_builder(&mut self, name: &str) -> (SignedObjectBuilder, String) {
        self.next_serial += 1;
        let uri = format!("{BASE}/ca/{name}");
        let b = SignedObjectBuilder::new(
            self.next_serial.into(),
            Validity::from_secs(7 * 86400),
            rsync(&format!("{BASE}/ca/ca.crl")),
            rsync(&format!("{BASE}/ta/ca.cer")),
            rsync(&uri),
        );
        (b, uri)
    }

    /// A ROA of `asn` for `(prefix, length, max length)`s; returns its file and its EE
    /// certificate's serial.
    pub fn roa(
        &mut self,
        name: &str,
        asn: u32,
        prefixes: &[(Ipv4Addr, u8, Option<u8>)],
    ) -> (PathBuf, u64) {
        let mut roa = RoaBuilder::new(Asn::from_u32(asn));
        for (a, l, m) in prefixes {
            roa.push_v4_addr(*a, *l, *m);
        }
        let (b, uri) = self.object_builder(name);
        let roa = roa.finalize(b, &self.signer, &self.ca_key).expect("ROA");
        let path = file_of(&self.dir, &uri);
        write(&path, &roa.to_captured().into_bytes());
        (path, self.next_serial)
    }

    /// An ASPA of `customer` with `providers`.
    pub fn aspa(&mut self, name: &str, customer: u32, providers: &[u32]) -> PathBuf {
        let providers: Vec<Asn> = providers.iter().map(|p| Asn::from_u32(*p)).collect();
        let aspa = AspaBuilder::new(Asn::from_u32(customer), providers).expect("providers");
        let (b, uri) = self.object_builder(name);
        let aspa = aspa.finalize(b, &self.signer, &self.ca_key).expect("ASPA");
        let path = file_of(&self.dir, &uri);
        write(&path, &aspa.to_captured().into_bytes());
        path
    }

    /// Writes the CA's CRL listing these EE serials.
    pub fn revoke(&mut self, serials: &[u64]) {
        let entries: Vec<CrlEntry> = serials
            .iter()
            .map(|s| CrlEntry::new((*s).into(), Time::now()))
            .collect();
        let crl = TbsCertList::new(
            RpkiSignatureAlgorithm::default(),
            self.ca_pub.to_subject_name(),
            Time::now(),
            Time::tomorrow(),
            entries,
            self.ca_pub.key_identifier(),
            (self.next_serial + 1_000).into(),
        )
        .into_crl(&self.signer, &self.ca_key)
        .expect("CA CRL");
        write(
            &file_of(&self.dir, &format!("{BASE}/ca/ca.crl")),
            &crl.to_captured().into_bytes(),
        );
    }
}
