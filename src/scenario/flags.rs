//! The `quick` command's flags as a scenario: they fill the same partial scenario a file fills,
//! each value located at its flag, and the same conversion checks them.
//!
//! So a flag accepts and refuses exactly what the file's key does, with the same message; only
//! the prefix differs (`-c: expected at most 100000, found 1000000`). What is `quick`'s own stays
//! here: its defaults (200 requests unless `-z`, an hour's cap without it), the profile's name
//! (`no-keepalive`, `PRESET (reqwest)`), and the URL's path becoming the request path. The
//! command-line parser is not this module's business: it hands over plain values.

use std::time::Duration;

use super::convert::convert;
use super::partial::{
    Limit, RawHeader, RawLoad, RawProfile, RawRequest, RawScenario, RawStage, RawTimeouts, RawTls,
};
use super::source::{Located, Source};
use super::{ClientBackend, Measure, Scenario, ScenarioError, Target};
use crate::units::{HumanDuration, OptDuration};

/// Requests of a `quick` run without `-n` or `-z`.
pub const QUICK_REQUESTS: u64 = 200;
/// How long a `quick` run without `-z` may last at most.
pub const QUICK_MAX_DURATION: Duration = Duration::from_secs(3600);

/// The values of `quick`'s flags, as given (nothing checked yet).
#[derive(Clone, Debug, PartialEq)]
pub struct QuickFlags {
    /// The URL, or `mock`.
    pub url: String,
    /// `-c`: workers of the closed model.
    pub concurrency: u64,
    /// `-q`: requests per second (the open model, instead of `-c`).
    pub rate: Option<f64>,
    /// `--max-in-flight` (with `-q`).
    pub max_in_flight: u64,
    /// `-n`: stop after this many requests.
    pub requests: Option<u64>,
    /// `-z`: run for this long.
    pub duration: Option<HumanDuration>,
    /// `-m`.
    pub method: String,
    /// `-H "Name: value"`, in order.
    pub headers: Vec<String>,
    /// `-d`.
    pub body: Option<String>,
    /// `--no-sockets` switches the socket sampler off.
    pub sockets: bool,
    /// The client profile's flags.
    pub profile: ProfileFlags,
}

/// The flags of `quick`'s one client profile.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ProfileFlags {
    /// `--preset`.
    pub preset: String,
    /// `--client` (`native`, `reqwest`).
    pub client: String,
    /// `--http2`.
    pub http2: bool,
    /// `--insecure`.
    pub insecure: bool,
    /// `--disable-keepalive`: a new client per request, none kept alive.
    pub disable_keepalive: bool,
    /// `--max-connections` (a whole number or "none").
    pub max_connections: Option<String>,
    /// `--max-keepalive` (a whole number or "none").
    pub max_keepalive: Option<String>,
    /// `--keepalive-expiry`.
    pub keepalive_expiry: Option<OptDuration>,
    /// `--connect-timeout`.
    pub connect_timeout: Option<OptDuration>,
    /// `--read-timeout`.
    pub read_timeout: Option<OptDuration>,
    /// `--write-timeout`.
    pub write_timeout: Option<OptDuration>,
    /// `--pool-timeout`.
    pub pool_timeout: Option<OptDuration>,
}

/// Turns `quick`'s flags into the same validated scenario a file gives.
pub fn from_flags(flags: QuickFlags) -> Result<Scenario, ScenarioError> {
    let src = Source::Flags { flag_of };
    let url = flags.url.clone();
    let profile = flags.profile.clone();
    let raw = partial(flags)?;
    let mut s = convert(&src, raw)?;
    let base = if profile.disable_keepalive {
        "no-keepalive"
    } else {
        profile.preset.as_str()
    };
    for p in &mut s.profiles {
        p.name = match p.client {
            ClientBackend::Native => base.to_string(),
            other => format!("{base} ({})", other.name()),
        };
    }
    Ok(with_url_path(s, &url))
}

/// The flag behind a key that a check names without a value of its own.
fn flag_of(key: &str) -> Option<&'static str> {
    Some(match key {
        "max_connections" => "--max-connections",
        "max_keepalive_connections" => "--max-keepalive",
        "keepalive_expiry" => "--keepalive-expiry",
        "stages" => "-z",
        _ => return None,
    })
}

/// The partial scenario the flags say. Refuses only what has no file equivalent (a header
/// without ':') or is read as text (a limit).
fn partial(f: QuickFlags) -> Result<RawScenario, ScenarioError> {
    let mut headers = Vec::new();
    for h in &f.headers {
        let (name, value) = h.split_once(':').ok_or_else(|| ScenarioError::Flag {
            flag: "-H".into(),
            message: "expected \"Name: value\", found a header without ':'".into(),
        })?;
        let name = name.trim().to_string();
        headers.push(RawHeader {
            value: Located::flag(format!("-H {name}"), value.trim().to_string()),
            name,
        });
    }
    let (concurrency, rate, max_in_flight) = match f.rate {
        Some(q) => (
            None,
            Some(Located::flag("-q", q)),
            Some(Located::flag("--max-in-flight", f.max_in_flight)),
        ),
        None => (Some(Located::flag("-c", f.concurrency)), None, None),
    };
    let max_requests = match (f.requests, f.duration) {
        (Some(n), _) => Some(n),
        (None, Some(_)) => None,
        (None, None) => Some(QUICK_REQUESTS),
    };
    let duration = f.duration.unwrap_or(HumanDuration(QUICK_MAX_DURATION));
    let load = RawLoad {
        stages: vec![Located::flag(
            "-z",
            RawStage {
                duration: Located::flag("-z", duration),
                concurrency,
                rate,
                ramp: None,
            },
        )],
        max_requests: max_requests.map(|n| Located::flag("-n", n)),
        graceful_stop: None,
        think_time: None,
        max_in_flight,
    };
    Ok(RawScenario {
        name: Some("quick".into()),
        target: Located::flag("URL", f.url),
        mock: None,
        request: RawRequest {
            method: Some(Located::flag("-m", f.method)),
            path: None,
            headers,
            body: f.body,
            json: None,
            stream: None,
        },
        load: Located::flag("-z", load),
        profiles: vec![Located::flag("--preset", raw_profile(f.profile)?)],
        measure: Measure { sockets: f.sockets },
        workload: None,
        poll: None,
    })
}

fn raw_profile(f: ProfileFlags) -> Result<RawProfile, ScenarioError> {
    let limit = |flag: &str, text: &Option<String>| -> Result<Option<Limit>, ScenarioError> {
        text.as_deref()
            .map(|t| {
                Limit::from_text(t).map_err(|message| ScenarioError::Flag {
                    flag: flag.into(),
                    message,
                })
            })
            .transpose()
    };
    // --disable-keepalive is `new-client-per-request`'s pool on the chosen preset; the two
    // limit flags still override it.
    let (mut max_connections, mut max_keepalive) = (None, None);
    if f.disable_keepalive {
        (max_connections, max_keepalive) = (Some(Limit(None)), Some(Limit(Some(0))));
    }
    max_connections = limit("--max-connections", &f.max_connections)?.or(max_connections);
    max_keepalive = limit("--max-keepalive", &f.max_keepalive)?.or(max_keepalive);
    Ok(RawProfile {
        name: None,
        preset: Some(Located::flag("--preset", f.preset)),
        client: Some(Located::flag("--client", f.client)),
        reuse_client: f.disable_keepalive.then_some(false),
        max_connections,
        max_keepalive_connections: max_keepalive,
        keepalive_expiry: f.keepalive_expiry,
        timeout: Some(RawTimeouts {
            connect: f.connect_timeout,
            read: f.read_timeout,
            write: f.write_timeout,
            pool: f.pool_timeout,
        }),
        http_version: f
            .http2
            .then(|| Located::flag("--http2", "http2".to_string())),
        proxy: None,
        tls: Some(RawTls {
            ca_file: None,
            insecure: Some(f.insecure),
        }),
        retry: None,
    })
}

/// For `quick URL`: the URL's path (and query) becomes the request path.
fn with_url_path(mut s: Scenario, url: &str) -> Scenario {
    if let Target::Url(e) = &mut s.target {
        let pq = url
            .parse::<http::Uri>()
            .ok()
            .and_then(|u| u.path_and_query().map(|p| p.as_str().to_string()))
            .unwrap_or_else(|| "/".into());
        e.base_path.clear();
        s.request.path = if pq.is_empty() { "/".into() } else { pq };
    }
    s
}

#[cfg(test)]
mod tests {
    use super::super::{Profile, parse};
    use super::*;

    /// `quick mock` with the command line's defaults.
    fn quick() -> QuickFlags {
        QuickFlags {
            url: "mock".into(),
            concurrency: 50,
            rate: None,
            max_in_flight: 10_000,
            requests: None,
            duration: None,
            method: "GET".into(),
            headers: Vec::new(),
            body: None,
            sockets: true,
            profile: ProfileFlags {
                preset: "recommended".into(),
                client: "native".into(),
                ..ProfileFlags::default()
            },
        }
    }

    const FILE: &str = "target = \"mock\"\n[request]\nmethod = \"GET\"\n[load]\nstages = [{ duration = \"1s\", concurrency = 4 }]\n[[profiles]]\npreset = \"recommended\"\n";

    fn with(edit: impl Fn(&mut QuickFlags)) -> QuickFlags {
        let mut f = quick();
        edit(&mut f);
        f
    }

    #[test]
    fn a_bad_value_gets_the_same_message_from_a_file_and_from_a_flag() {
        // SAFETY: no test reads this variable.
        unsafe { std::env::remove_var("CONNSCOPE_TEST_FLAGS_UNSET") };
        let profile = |extra: &str| FILE.replace("preset = \"recommended\"", extra);
        let cases: Vec<(String, QuickFlags, &str, &str)> = vec![
            (
                FILE.replace("concurrency = 4", "concurrency = 1000000"),
                with(|f| f.concurrency = 1_000_000),
                "-c",
                "expected at most 100000, found 1000000",
            ),
            (
                FILE.replace("concurrency = 4", "concurrency = 0"),
                with(|f| f.concurrency = 0),
                "-c",
                "expected a whole number ≥ 1, found 0",
            ),
            (
                FILE.replace("concurrency = 4", "rate = 0"),
                with(|f| f.rate = Some(0.0)),
                "-q",
                "expected requests per second > 0 and ≤ 1000000, found 0",
            ),
            (
                FILE.replace("concurrency = 4 }]", "rate = 5 }]\nmax_in_flight = 0"),
                with(|f| (f.rate, f.max_in_flight) = (Some(5.0), 0)),
                "--max-in-flight",
                "expected a whole number ≥ 1 and ≤ 1000000, found 0",
            ),
            (
                FILE.replace("concurrency = 4 }]", "concurrency = 4 }]\nmax_requests = 0"),
                with(|f| f.requests = Some(0)),
                "-n",
                "expected a whole number ≥ 1, found 0",
            ),
            (
                FILE.replace("\"1s\"", "\"0s\""),
                with(|f| f.duration = Some(HumanDuration(Duration::ZERO))),
                "-z",
                "expected a duration > 0, found 0s",
            ),
            (
                FILE.replace("\"GET\"", "\"GE T\""),
                with(|f| f.method = "GE T".into()),
                "-m",
                "expected an HTTP method such as \"POST\", found \"GE T\"",
            ),
            (
                FILE.replace(
                    "method = \"GET\"",
                    "headers = { X-Key = \"${CONNSCOPE_TEST_FLAGS_UNSET}\" }",
                ),
                with(|f| f.headers = vec!["X-Key: ${CONNSCOPE_TEST_FLAGS_UNSET}".into()]),
                "-H X-Key",
                "environment variable CONNSCOPE_TEST_FLAGS_UNSET is not set",
            ),
            (
                FILE.replace("method = \"GET\"", "headers = { X-Key = \"s3cr\\u0001t\" }"),
                with(|f| f.headers = vec!["X-Key: s3cr\u{1}t".into()]),
                "-H X-Key",
                "expected a header value of visible ASCII characters",
            ),
            (
                profile("preset = \"fast\""),
                with(|f| f.profile.preset = "fast".into()),
                "--preset",
                "expected one of httpx-defaults, recommended, recommended-retry, new-client-per-request, requests-session, found \"fast\"",
            ),
            (
                profile("client = \"curl\""),
                with(|f| f.profile.client = "curl".into()),
                "--client",
                "expected one of native, reqwest, httpx, found \"curl\"",
            ),
            (
                profile("preset = \"recommended\"\nmax_connections = 0"),
                with(|f| f.profile.max_connections = Some("0".into())),
                "--max-connections",
                "expected at least 1 (or \"none\" for unlimited), found 0",
            ),
            (
                profile("preset = \"recommended\"\nmax_connections = \"many\""),
                with(|f| f.profile.max_connections = Some("many".into())),
                "--max-connections",
                "expected a whole number, or \"none\" for unlimited, found \"many\"",
            ),
            (
                profile(
                    "preset = \"recommended\"\nmax_connections = 10\nmax_keepalive_connections = 20",
                ),
                with(|f| {
                    f.profile.max_connections = Some("10".into());
                    f.profile.max_keepalive = Some("20".into());
                }),
                "--max-keepalive",
                "expected at most max_connections (10), found 20",
            ),
        ];
        for (text, flags, flag, message) in cases {
            let from_file = parse("s.toml", &text).unwrap_err().to_string();
            assert!(from_file.starts_with("s.toml:"), "{from_file}");
            assert!(
                from_file.ends_with(&format!(": {message}")),
                "file: {from_file}\nwanted: {message}"
            );
            let from_flags = from_flags(flags).unwrap_err().to_string();
            assert_eq!(from_flags, format!("{flag}: {message}"));
            assert!(!from_flags.contains("s3cr"), "a header value was echoed");
        }
    }

    #[test]
    fn the_concurrency_cap_is_the_files_and_names_the_flag() {
        let e = from_flags(with(|f| f.concurrency = 1_000_000)).unwrap_err();
        assert_eq!(e.to_string(), "-c: expected at most 100000, found 1000000");
        let e = parse(
            "s.toml",
            &FILE.replace("concurrency = 4", "concurrency = 1000000"),
        );
        assert_eq!(
            e.unwrap_err().to_string(),
            "s.toml:5:44: load.stages[0].concurrency: expected at most 100000, found 1000000"
        );
        let s = from_flags(with(|f| f.concurrency = 100_000)).unwrap();
        assert_eq!(s.load.max_concurrency(), 100_000);
    }

    #[test]
    fn none_switches_limits_and_timeouts_off_from_a_file_and_from_flags_alike() {
        let text = FILE.replace(
            "preset = \"recommended\"",
            "preset = \"recommended\"\nmax_connections = \"none\"\nmax_keepalive_connections = \"none\"\nkeepalive_expiry = \"none\"\ntimeout = { connect = \"none\", read = \"none\", write = \"none\", pool = \"none\" }",
        );
        let from_file = parse("s.toml", &text).unwrap().profiles.remove(0);
        let none = || Some("none".to_string());
        let off = Some(OptDuration(None));
        let from_flags = from_flags(with(|f| {
            f.profile = ProfileFlags {
                max_connections: none(),
                max_keepalive: none(),
                keepalive_expiry: off,
                connect_timeout: off,
                read_timeout: off,
                write_timeout: off,
                pool_timeout: off,
                ..f.profile.clone()
            }
        }))
        .unwrap()
        .profiles
        .remove(0);
        assert_eq!(from_flags, from_file);
        assert_eq!(from_flags.max_connections, None);
        assert_eq!(from_flags.max_keepalive_connections, None);
        assert_eq!(from_flags.timeout, super::super::Timeouts::all(None));
    }

    #[test]
    fn quick_keeps_its_defaults_and_profile_names() {
        let s = from_flags(quick()).unwrap();
        assert_eq!((s.name.as_str(), s.source.as_str()), ("quick", "quick"));
        assert_eq!(s.load.max_requests, Some(QUICK_REQUESTS));
        assert_eq!(s.load.total(), QUICK_MAX_DURATION);
        assert_eq!(s.load.max_concurrency(), 50);
        assert_eq!(s.profiles.len(), 1);
        let p = &s.profiles[0];
        assert_eq!(p.name, "recommended");
        assert_eq!(
            Profile {
                name: p.name.clone(),
                ..Profile::preset("recommended").unwrap()
            },
            *p
        );
        let s = from_flags(with(|f| {
            f.duration = Some(HumanDuration(Duration::from_secs(2)))
        }));
        let s = s.unwrap();
        assert_eq!(s.load.max_requests, None);
        assert_eq!(s.load.total(), Duration::from_secs(2));

        let s = from_flags(with(|f| {
            f.profile.disable_keepalive = true;
            f.profile.client = "reqwest".into();
        }))
        .unwrap();
        let p = &s.profiles[0];
        assert_eq!(p.name, "no-keepalive (reqwest)");
        assert_eq!(p.client, ClientBackend::Reqwest);
        assert!(!p.reuse_client);
        assert_eq!(
            (p.max_connections, p.max_keepalive_connections),
            (None, Some(0))
        );
        let s = from_flags(with(|f| f.profile.preset = "httpx-defaults".into())).unwrap();
        assert_eq!(s.profiles[0].name, "httpx-defaults");
    }

    #[test]
    fn the_rate_flags_make_an_open_plan_with_its_in_flight_cap() {
        let s = from_flags(with(|f| (f.rate, f.max_in_flight) = (Some(250.5), 64))).unwrap();
        assert_eq!(
            s.load.model(),
            super::super::LoadModel::Open { max_in_flight: 64 }
        );
        assert_eq!(s.load.max_rate(), 250.5);
    }

    #[test]
    fn request_and_client_flags_reach_the_scenario() {
        // SAFETY: no other test reads this variable.
        unsafe { std::env::set_var("CONNSCOPE_TEST_FLAGS_TOKEN", "t0ken") };
        let s = from_flags(with(|f| {
            f.url = "http://127.0.0.1:9/v1/predict?x=1".into();
            f.method = "post".into();
            f.headers = vec![
                "X-Token: ${CONNSCOPE_TEST_FLAGS_TOKEN}".into(),
                "X-Model: llama".into(),
            ];
            f.body = Some("{}".into());
            f.sockets = false;
            f.profile.http2 = true;
            f.profile.insecure = true;
        }))
        .unwrap();
        let Target::Url(e) = &s.target else {
            panic!("a URL target")
        };
        assert_eq!(
            (e.authority().as_str(), e.base_path.as_str()),
            ("127.0.0.1:9", "")
        );
        assert_eq!(s.request.path, "/v1/predict?x=1");
        assert_eq!(s.request.method, http::Method::POST);
        assert_eq!(&s.request.body[..], b"{}");
        let shown: Vec<(String, String)> = s
            .request
            .headers
            .iter()
            .map(|h| (h.name.to_string(), h.shown()))
            .collect();
        assert_eq!(
            shown,
            [
                ("x-token".to_string(), super::super::REDACTED.to_string()),
                ("x-model".to_string(), "llama".to_string())
            ]
        );
        assert_eq!(s.request.headers[0].value, "t0ken");
        assert!(!s.measure.sockets);
        let p = &s.profiles[0];
        assert_eq!(p.http_version, super::super::HttpVersion::Http2);
        assert!(p.tls.insecure);
        let e = from_flags(with(|f| f.headers = vec!["X-Token".into()])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "-H: expected \"Name: value\", found a header without ':'"
        );
        let e = from_flags(with(|f| f.url = "ftp://host".into())).unwrap_err();
        assert!(e.to_string().starts_with("URL: expected \"mock\""), "{e}");
    }
}
