//! A small argument walker (flags with values, positionals, `--`) and the size syntax of
//! the command line (`512M`, `1G`, `4K`).

use std::ffi::{OsStr, OsString};

use super::Failure;

/// One command-line item.
#[derive(Debug, PartialEq, Eq)]
pub enum Arg {
    /// `-x`, `-xVALUE`, `--name` or `--name=VALUE`: the flag and an attached value.
    Flag(String, Option<OsString>),
    /// Anything else (and everything after `--`).
    Pos(OsString),
}

/// Walks a command's arguments.
pub struct Args {
    v: Vec<OsString>,
    i: usize,
    rest_positional: bool,
}

impl Args {
    /// Arguments after the command name.
    pub fn new(v: Vec<OsString>) -> Args {
        Args {
            v,
            i: 0,
            rest_positional: false,
        }
    }

    /// Everything not yet consumed, as given (a command line to run).
    pub fn rest(&mut self) -> Vec<OsString> {
        let r = self.v[self.i.min(self.v.len())..].to_vec();
        self.i = self.v.len();
        r
    }

    /// The next item.
    pub fn next_arg(&mut self) -> Option<Arg> {
        let a = self.v.get(self.i)?.clone();
        self.i += 1;
        if self.rest_positional {
            return Some(Arg::Pos(a));
        }
        let s = a.to_string_lossy();
        if s == "--" {
            self.rest_positional = true;
            return self.next_arg();
        }
        if let Some(long) = s.strip_prefix("--") {
            return Some(match long.split_once('=') {
                Some((k, v)) => Arg::Flag(format!("--{k}"), Some(v.into())),
                None => Arg::Flag(s.into_owned(), None),
            });
        }
        if s.len() > 1 && s.starts_with('-') {
            let flag: String = s.chars().take(2).collect();
            let tail = &s[flag.len()..];
            let attached = (!tail.is_empty()).then(|| OsString::from(tail));
            return Some(Arg::Flag(flag, attached));
        }
        Some(Arg::Pos(a))
    }

    /// The value of `flag`: attached (`-oX`, `--size=X`) or the next argument.
    pub fn value(&mut self, flag: &str, attached: Option<OsString>) -> Result<OsString, Failure> {
        if let Some(v) = attached {
            return Ok(v);
        }
        let v = self
            .v
            .get(self.i)
            .cloned()
            .ok_or_else(|| Failure::Usage(format!("{flag} needs a value")))?;
        self.i += 1;
        Ok(v)
    }

    /// The next argument, which must be a positional named `what`.
    pub fn positional(&mut self, what: &str) -> Result<OsString, Failure> {
        match self.next_arg() {
            Some(Arg::Pos(p)) => Ok(p),
            Some(Arg::Flag(f, _)) => Err(Failure::Usage(format!("unknown option {f}"))),
            None => Err(Failure::Usage(format!("missing {what}"))),
        }
    }

    /// Fails when arguments are left over.
    pub fn finish(&mut self) -> Result<(), Failure> {
        match self.next_arg() {
            None => Ok(()),
            Some(Arg::Pos(p)) => Err(Failure::Usage(format!(
                "unexpected argument '{}'",
                p.to_string_lossy()
            ))),
            Some(Arg::Flag(f, _)) => Err(Failure::Usage(format!("unknown option {f}"))),
        }
    }
}

/// Parses a size: a number with an optional K, M, G, T suffix (powers of 1024, `KiB`,
/// `K` and `k` alike) or a plain byte count.
pub fn parse_size(s: &OsStr) -> Result<u64, String> {
    let t = s.to_string_lossy();
    let bad = || format!("'{t}' is not a size (e.g. 1G, 512M, 4K)");
    let u = t.trim();
    let digits = u.find(|c: char| !c.is_ascii_digit()).unwrap_or(u.len());
    let (num, suffix) = u.split_at(digits);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let shift = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(bad()),
    };
    n.checked_mul(1u64 << shift).ok_or_else(bad)
}

/// A byte count for people: `1.00 GiB`, `512 KiB`, `17 B`.
pub fn human(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else if v.fract() == 0.0 {
        format!("{v:.0} {}", UNITS[u])
    } else {
        format!("{v:.2} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        let p = |s: &str| parse_size(OsStr::new(s));
        assert_eq!(p("1G"), Ok(1 << 30));
        assert_eq!(p("512M"), Ok(512 << 20));
        assert_eq!(p("4k"), Ok(4096));
        assert_eq!(p("2MiB"), Ok(2 << 20));
        assert_eq!(p("12345"), Ok(12345));
        assert!(p("").is_err() && p("G").is_err() && p("1X").is_err() && p("-1G").is_err());
        assert!(p("99999999999T").is_err());
        assert_eq!(human(1 << 30), "1 GiB");
        assert_eq!(human(1536), "1.50 KiB");
        assert_eq!(human(17), "17 B");
    }

    #[test]
    fn walking() {
        let v = ["-o", "ro", "-oallow_other", "--size=1G", "img", "--", "-x"]
            .iter()
            .map(OsString::from)
            .collect();
        let mut a = Args::new(v);
        assert_eq!(a.next_arg(), Some(Arg::Flag("-o".into(), None)));
        assert_eq!(a.value("-o", None).unwrap(), "ro");
        assert_eq!(
            a.next_arg(),
            Some(Arg::Flag("-o".into(), Some("allow_other".into())))
        );
        assert_eq!(
            a.next_arg(),
            Some(Arg::Flag("--size".into(), Some("1G".into())))
        );
        assert_eq!(a.next_arg(), Some(Arg::Pos("img".into())));
        assert_eq!(a.next_arg(), Some(Arg::Pos("-x".into())));
        assert_eq!(a.next_arg(), None);
    }
}
