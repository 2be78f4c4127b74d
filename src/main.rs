//! The `routewitness` binary: parse arguments, set up logging, run a command from the
//! library, map the result to an exit code (0 ok, 1 failure, 2 input incomplete,
//! 64 bad usage).

use clap::Parser;
use routewitness::cli::{self, Cli, CliError, Command, Outcome};
use std::process::ExitCode;

const EX_FAILURE: u8 = 1;
const EX_INCOMPLETE: u8 = 2;
const EX_USAGE: u8 = 64;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp
                | clap::error::ErrorKind::DisplayVersion
                | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    ExitCode::SUCCESS
                }
                _ => ExitCode::from(EX_USAGE),
            };
        }
    };
    let log = cli.log.clone().unwrap_or_else(|| match cli.command {
        Command::Run(_) => "info".to_string(),
        _ => "warn".to_string(),
    });
    let filter = match tracing_subscriber::EnvFilter::try_new(&log) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: --log {log:?}: {e}");
            return ExitCode::from(EX_USAGE);
        }
    };
    let _ = tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .finish(),
    );
    let result = match cli.command {
        Command::Replay(args) => cli::replay(args),
        Command::Validate(args) => cli::validate(args).map_err(CliError::from),
        Command::Eval(args) => cli::eval(args),
        Command::Run(args) => cli::run(*args),
        Command::Mrt2bmp(args) => cli::mrt2bmp(args).map_err(CliError::from),
        Command::Config(args) => cli::config(args),
        Command::Rpki(args) => cli::rpki(args),
        Command::Act(args) => cli::act(args),
        Command::Keygen(args) => cli::keygen(args),
        Command::Webhook(args) => cli::webhook(args),
        Command::State(args) => cli::state(args),
    };
    match result {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Incomplete) => ExitCode::from(EX_INCOMPLETE),
        Err(CliError::Usage(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(EX_USAGE)
        }
        Err(CliError::Failed(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(EX_FAILURE)
        }
    }
}
