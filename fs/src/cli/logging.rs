//! `tracing` set-up: `RUST_LOG` filters (silent when unset), output on stderr, one line per
//! closed request span at debug level, and fuser's `log` records bridged into `tracing`.

use tracing_log::AsLog;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::EnvFilter;

/// Installs the subscriber; harmless when called twice.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("off"));
    let max = filter
        .max_level_hint()
        .unwrap_or(tracing::level_filters::LevelFilter::OFF);
    // A background daemon's stderr becomes $SEALFS_LOG later: no colours there.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("SEALFS_LOG").is_none();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_span_events(FmtSpan::CLOSE)
        .with_thread_names(true)
        .finish();
    if tracing::subscriber::set_global_default(subscriber).is_ok() {
        let _ = tracing_log::LogTracer::init_with_filter(max.as_log());
    }
}
