//! Debug aid: time the ingest stage alone (parse + convert, events dropped).
use routewitness::ingest::{mrt, PeerRegistry};
use std::time::Instant;
fn main() {
    let path = std::env::args().nth(1).expect("FILE");
    let mut reg = PeerRegistry::default();
    let mut n = 0u64;
    let t = Instant::now();
    mrt::read_file(path.as_ref(), &mut reg, None, |_| n += 1).expect("read");
    let s = t.elapsed().as_secs_f64();
    println!("{n} events in {s:.3} s = {:.2} M/s", n as f64 / s / 1e6);
}
