//! `logbook serve --config FILE`: settings from a TOML file, beside flags and
//! environment variables. Each key is the name of a `serve` flag (`listen`,
//! `max_body_bytes` or `max-body-bytes`, `syslog_tcp`, ...); the file fills in
//! what neither a flag nor the environment gives, so the order of precedence is
//! flag, then environment variable, then file, then default. An unknown key or a
//! value that is not a string, number or boolean stops the start, naming the key.

use anyhow::{anyhow, Context};
use clap::CommandFactory;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;

/// The `--config` path of a `serve` command line, if one is given (as
/// `--config FILE` or `--config=FILE`), else `LOGBOOK_CONFIG`.
pub fn config_path(args: &[OsString]) -> Option<OsString> {
    if args.get(1).and_then(|a| a.to_str()) != Some("serve") {
        return None;
    }
    let mut iter = args.iter().skip(2);
    while let Some(arg) = iter.next() {
        let text = arg.to_string_lossy();
        if text == "--" {
            break;
        }
        if text == "--config" {
            return iter.next().cloned();
        }
        if let Some(path) = text.strip_prefix("--config=") {
            return Some(OsString::from(path));
        }
    }
    std::env::var_os("LOGBOOK_CONFIG")
}

/// The environment variables the file's settings stand for, each `serve` flag's
/// own (`listen` -> `LOGBOOK_LISTEN`).
pub fn settings(path: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e| anyhow!("{} is not valid TOML: {e}", path.display()))?;
    let env_of = flag_environment();
    let mut out = Vec::new();
    for (key, value) in table {
        let name = key.replace('_', "-");
        let Some(env) = env_of.get(&name) else {
            return Err(anyhow!(
                "{}: {key}: is not a setting of `logbook serve` (one of: {})",
                path.display(),
                env_of.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        };
        let value = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::Float(n) => n.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => {
                return Err(anyhow!(
                    "{}: {key}: must be a string, number or boolean, not {}",
                    path.display(),
                    other.type_str()
                ))
            }
        };
        out.push((env.clone(), value));
    }
    Ok(out)
}

/// Sets each setting's environment variable where the environment does not
/// already give one (the environment wins over the file). Called before the
/// command line is parsed, and before any thread starts.
pub fn apply(settings: Vec<(String, String)>) {
    for (env, value) in settings {
        if std::env::var_os(&env).is_none() {
            std::env::set_var(env, value);
        }
    }
}

/// `serve`'s flags (long name) and their environment variables.
fn flag_environment() -> BTreeMap<String, String> {
    let command = crate::Cli::command();
    let Some(serve) = command.find_subcommand("serve") else {
        return BTreeMap::new();
    };
    serve
        .get_arguments()
        .filter_map(|arg| {
            let long = arg.get_long()?;
            let env = arg.get_env()?.to_str()?;
            (long != "config").then(|| (long.to_string(), env.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_serve_flags_and_others_are_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("logbook.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:0\"\nmax_body_bytes = 1024\nsession-ttl = 60\n",
        )
        .expect("write");
        let got = settings(&path).expect("settings");
        assert_eq!(
            got,
            [
                ("LOGBOOK_LISTEN".to_string(), "127.0.0.1:0".to_string()),
                ("LOGBOOK_MAX_BODY_BYTES".to_string(), "1024".to_string()),
                ("LOGBOOK_SESSION_TTL".to_string(), "60".to_string()),
            ]
        );
        std::fs::write(&path, "colour = \"red\"\n").expect("write");
        let err = settings(&path).expect_err("unknown key").to_string();
        assert!(err.contains("colour"), "{err}");
        std::fs::write(&path, "listen = [1]\n").expect("write");
        let err = settings(&path).expect_err("array").to_string();
        assert!(err.contains("listen"), "{err}");
        std::fs::write(&path, "listen = \n").expect("write");
        assert!(settings(&path).is_err(), "invalid TOML");
    }

    #[test]
    fn the_path_comes_from_the_serve_command_line() {
        let args = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            config_path(&args(&["logbook", "serve", "--config", "a.toml"])),
            Some("a.toml".into())
        );
        assert_eq!(
            config_path(&args(&["logbook", "serve", "--config=b.toml"])),
            Some("b.toml".into())
        );
        assert_eq!(
            config_path(&args(&["logbook", "query", "--config", "x"])),
            None
        );
    }
}
