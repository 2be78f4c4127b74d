//! Property tests for every decoder on untrusted bytes: the MRT stream decoder, the VRP
//! loaders and the ASN parser never panic or hang, whatever they are fed, and keep what
//! they could read.

mod common;
use common::fixture;
use proptest::prelude::*;
use routewitness::ingest::{mrt, IngestEvent, PeerRegistry};
use routewitness::input::InputReader;
use routewitness::model::Asn;
use routewitness::rpki::{vrps, LoadOptions};
use std::io::Read;
use std::path::Path;
use std::sync::OnceLock;

/// The first 48 KiB of real dumps of each kind, decompressed.
fn seeds() -> &'static Vec<Vec<u8>> {
    static SEEDS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        [
            "mrt/routeviews2_rib.20140523.0600_slice.mrt.gz",
            "mrt/pch_updates.et-header.20151023.gz",
            "mrt/routeviews2_updates.20080224.1839.bz2",
            "formats/bgpdump__bview.ipv6_unicast_add_path.gz",
            "formats/bgpkit__rrc00_updates.20000102.2014.gz",
            "formats/mrtparse__openbgpd_rib_table",
        ]
        .iter()
        .map(|rel| {
            let mut r = InputReader::open(&fixture(rel)).unwrap();
            let mut buf = vec![0u8; 48 * 1024];
            let mut got = 0;
            while got < buf.len() {
                match r.read(&mut buf[got..]).unwrap() {
                    0 => break,
                    n => got += n,
                }
            }
            buf.truncate(got);
            buf
        })
        .collect()
    })
}

/// Runs the MRT decoder over `bytes`; returns (routes, damage) counts.
fn decode(bytes: Vec<u8>) -> (u64, u64) {
    let mut registry = PeerRegistry::default();
    let (mut routes, mut damage) = (0, 0);
    let summary = mrt::read_stream(
        InputReader::from_memory(bytes),
        Path::new("fuzz"),
        &mut registry,
        |ev| match ev {
            IngestEvent::Route(_) => routes += 1,
            IngestEvent::Damage(d) if d.kind.is_loss() => damage += 1,
            _ => {}
        },
    );
    assert_eq!(summary.complete, damage == 0);
    (routes, damage)
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(i, x)| Mutation::Flip(i, x)),
        any::<usize>().prop_map(Mutation::Truncate),
        (
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 1..32)
        )
            .prop_map(|(i, v)| Mutation::Insert(i, v)),
        (any::<usize>(), 1usize..64).prop_map(|(i, n)| Mutation::Delete(i, n)),
    ]
}

fn apply(mut b: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        if b.is_empty() {
            break;
        }
        match m {
            Mutation::Flip(i, x) => {
                let i = i % b.len();
                b[i] ^= x;
            }
            Mutation::Truncate(i) => b.truncate(i % b.len()),
            Mutation::Insert(i, v) => {
                let i = i % b.len();
                b.splice(i..i, v.iter().copied());
            }
            Mutation::Delete(i, n) => {
                let i = i % b.len();
                let end = (i + n).min(b.len());
                b.drain(i..end);
            }
        }
    }
    b
}

#[test]
fn undamaged_seeds_decode_cleanly_up_to_the_cut() {
    // Each seed is a clean dump cut at 48 KiB: the only damage is the torn last record.
    for s in seeds() {
        let (routes, damage) = decode(s.clone());
        assert!(routes > 0);
        assert!(damage <= 1, "{damage} problems in a clean dump prefix");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn mrt_decoder_survives_mutated_real_dumps(
        seed in 0usize..6,
        muts in proptest::collection::vec(mutation(), 1..6),
    ) {
        let bytes = apply(seeds()[seed].clone(), &muts);
        decode(bytes);
    }

    #[test]
    fn mrt_decoder_survives_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        decode(bytes);
    }

    #[test]
    fn a_clean_prefix_is_never_lost_to_later_damage(seed in 0usize..6, cut in 0.3f64..0.9, junk in proptest::collection::vec(any::<u8>(), 1..200)) {
        // Routes before the damage are all used: damage at the end of a clean prefix of
        // the stream yields at least the routes of the prefix cut at a record boundary.
        let s = &seeds()[seed];
        let at = (s.len() as f64 * cut) as usize;
        let (clean, _) = decode(s[..at].to_vec());
        let mut damaged = s[..at].to_vec();
        damaged.extend_from_slice(&junk);
        let (routes, _) = decode(damaged);
        prop_assert!(routes >= clean, "{routes} < {clean}");
    }

    #[test]
    fn vrp_loader_survives_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = vrps::parse(&bytes, Path::new("fuzz"), LoadOptions::default());
    }

    #[test]
    fn vrp_loader_survives_mutated_exports(
        which in 0usize..3,
        muts in proptest::collection::vec(mutation(), 1..4),
        skip in any::<bool>(),
    ) {
        let rel = ["vrp/rpki-client-8.2_lab.json", "vrp/rpki-client-8.2_lab.csv", "vrp/stayrtr__cmd_stayrtr_test.rpki.json"][which];
        let bytes = apply(std::fs::read(fixture(rel)).unwrap(), &muts);
        let opts = LoadOptions { skip_invalid: skip, ..LoadOptions::default() };
        if let Ok(set) = vrps::parse(&bytes, Path::new(rel), opts) {
            for v in &set.vrps {
                prop_assert!(v.max_length >= v.prefix.prefix_len());
                prop_assert!(v.max_length <= v.prefix.max_prefix_len());
                prop_assert_eq!(v.prefix.trunc(), v.prefix);
            }
        }
    }

    /// Signed objects, mutated: `rpki inspect`'s reading and the repository scan the
    /// `directory` source runs give an answer, never a panic.
    #[test]
    fn signed_object_readers_survive_mutated_objects(
        which in 0usize..5,
        muts in proptest::collection::vec(mutation(), 1..4),
    ) {
        let rel = [
            "rpki/rpki-prover/AS204325.asa",
            "rpki/rpki-prover/afrinic_mft1.mft",
            "rpki/rpki-prover/smaller.cer",
            "rpki/lab-repo/repo/rpki.example.net/rpki/TA/CA/1e14bfa6037247b150f1d64c859db710b779c7a2a0f56c93cb5529c1672ea448.roa",
            "rpki/lab-repo/repo/rpki.example.net/rpki/TA/CA/revoked.crl",
        ][which];
        let bytes = apply(std::fs::read(fixture(rel)).unwrap(), &muts);
        let dir = std::env::temp_dir().join(format!("rw-fuzz-signed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ext = Path::new(rel).extension().unwrap().to_str().unwrap();
        let file = dir.join(format!("object.{ext}"));
        std::fs::write(&file, &bytes).unwrap();
        let repo = fixture("rpki/lab-repo/repo");
        let i = routewitness::rpki::signed::inspect(&file, Some(&repo), &[]);
        prop_assert!(i.decoded || i.error.is_some());
        let scan = routewitness::rpki::signed::scan_repository(&dir, &[]);
        prop_assert_eq!(scan.accepted + scan.rejected.len(), scan.objects);
        let _ = std::fs::remove_file(&file);
    }

    #[test]
    fn asn_parser_never_panics_and_round_trips(s in ".{0,24}", n in any::<u32>()) {
        let _ = s.parse::<Asn>();
        prop_assert_eq!(format!("AS{n}").parse::<Asn>(), Ok(Asn(n)));
        prop_assert_eq!(n.to_string().parse::<Asn>(), Ok(Asn(n)));
    }
}
