//! Debug aid: print every MRT record of a file as bgpkit-parser decodes it.
//! `cargo run --example dump_records -- FILE`
use bgpkit_parser::{BgpkitParser, RecoveryConfig, RecoveryEvent};
use routewitness::input::InputReader;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: dump_records FILE")?;
    let reader = InputReader::open(path.as_ref())?;
    let parser = BgpkitParser::from_reader(reader).disable_warnings();
    for item in parser.into_recovering_record_iter(RecoveryConfig::default()) {
        match item {
            Ok(RecoveryEvent::Item(r)) => println!("{:?}", r),
            Ok(RecoveryEvent::Gap(g)) => println!("GAP {:?}", g),
            Err(e) => println!("ERROR at {}: {}", e.offset, e.error),
        }
    }
    Ok(())
}
