//! Client profiles: the settings of the client under test, named as httpx names them, and the
//! presets from the client-config guide (`httpx-defaults`, `recommended`, `recommended-retry`, …).

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::retry::RetryPolicy;
use crate::units::OptDuration;

/// Which HTTP version the client speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum HttpVersion {
    /// HTTP/1.1 only. Default.
    #[default]
    Http1,
    /// HTTP/2 only: ALPN `h2` over TLS, prior knowledge (h2c) over cleartext.
    Http2,
    /// Offer both over TLS (ALPN picks); HTTP/1.1 over cleartext.
    Auto,
}

/// The four httpx timeouts. `None` means no limit (httpx's `timeout=None`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeouts {
    /// DNS + TCP connect + proxy tunnel + TLS handshake.
    pub connect: OptDuration,
    /// Waiting for the response head, and each gap between body chunks.
    pub read: OptDuration,
    /// Handing the request (head and body) to the connection.
    pub write: OptDuration,
    /// Waiting for a connection from the pool.
    pub pool: OptDuration,
}

impl Timeouts {
    /// The same limit for all four, as `httpx.Timeout(5.0)` sets.
    pub fn all(d: Option<Duration>) -> Timeouts {
        let d = OptDuration(d);
        Timeouts {
            connect: d,
            read: d,
            write: d,
            pool: d,
        }
    }
}

/// TLS settings of a profile.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsSettings {
    /// Extra CA certificates to trust (PEM), e.g. the mock's own CA.
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate (like `verify=False`). Default: false.
    pub insecure: bool,
}

/// Which client implementation runs the profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ClientBackend {
    /// connscope's own pool over hyper's connection API, with httpx's pool semantics and every
    /// phase timed apart. Default.
    #[default]
    Native,
    /// `reqwest::Client` (0.13) with the profile mapped onto its builder as closely as it allows;
    /// see `engine::reqwest_client` for each mapping and gap. Measures reqwest's own pool.
    Reqwest,
    /// Real httpx (`httpx.AsyncClient`) in a Python driver process (`engine::driver`), the
    /// profile mapped onto `httpx.Limits`, `httpx.Timeout`, `http2`, `verify` and `proxy`.
    /// Closed model only; retries are not supported yet.
    Httpx,
}

impl ClientBackend {
    /// Every backend, in the order messages list them.
    pub const ALL: [ClientBackend; 3] = [
        ClientBackend::Native,
        ClientBackend::Reqwest,
        ClientBackend::Httpx,
    ];

    /// The name used in scenario files, flags and reports ("native", "reqwest", "httpx").
    pub fn name(self) -> &'static str {
        match self {
            ClientBackend::Native => "native",
            ClientBackend::Reqwest => "reqwest",
            ClientBackend::Httpx => "httpx",
        }
    }

    /// True when the backend's load loop runs in a driver process rather than in the engine.
    pub fn is_driver(self) -> bool {
        matches!(self, ClientBackend::Httpx)
    }
}

impl FromStr for ClientBackend {
    type Err = String;

    /// A backend by [`ClientBackend::name`]; the message lists the names.
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|b| b.name() == s)
            .ok_or_else(|| one_of(Self::ALL.map(Self::name), s))
    }
}

impl HttpVersion {
    /// Every version setting, in the order messages list them.
    pub const ALL: [HttpVersion; 3] = [HttpVersion::Http1, HttpVersion::Http2, HttpVersion::Auto];

    /// The name used in scenario files and reports ("http1", "http2", "auto").
    pub fn name(self) -> &'static str {
        match self {
            HttpVersion::Http1 => "http1",
            HttpVersion::Http2 => "http2",
            HttpVersion::Auto => "auto",
        }
    }
}

impl FromStr for HttpVersion {
    type Err = String;

    /// A version by [`HttpVersion::name`]; the message lists the names.
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|v| v.name() == s)
            .ok_or_else(|| one_of(Self::ALL.map(Self::name), s))
    }
}

/// `expected one of a, b, found "c"`.
fn one_of<const N: usize>(names: [&str; N], found: &str) -> String {
    format!("expected one of {}, found {found:?}", names.join(", "))
}

/// One client configuration under test. Every field that a real client has is a field here.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// The name shown in summaries and reports.
    pub name: String,
    /// The preset it was built from, if any.
    pub preset: Option<String>,
    /// Which client implementation runs it.
    pub client: ClientBackend,
    /// `false` = a new client (hence a new TCP and TLS connection) per request, closed by the
    /// client after its response, as a discarded `httpx.post()` client does.
    pub reuse_client: bool,
    /// Most connections open at once (idle + in use); `None` = unlimited. For HTTP/1.1 also the
    /// most requests in flight; beyond it requests wait for the pool.
    pub max_connections: Option<usize>,
    /// Most idle connections kept for reuse; `None` = unlimited.
    pub max_keepalive_connections: Option<usize>,
    /// How long an idle connection is kept; `None` = forever.
    pub keepalive_expiry: OptDuration,
    /// The four timeouts.
    pub timeout: Timeouts,
    /// HTTP version.
    pub http_version: HttpVersion,
    /// An HTTP proxy (`http://host:port`) to send requests through.
    pub proxy: Option<String>,
    /// TLS settings.
    pub tls: TlsSettings,
    /// Retries with backoff, around each request; `None` = a failed request is not tried again.
    #[serde(default)]
    pub retry: Option<RetryPolicy>,
}

/// The names of the presets, for help and error messages.
pub const PRESET_NAMES: [&str; 5] = [
    "httpx-defaults",
    "recommended",
    "recommended-retry",
    "new-client-per-request",
    "requests-session",
];

fn secs(n: u64) -> Option<Duration> {
    Some(Duration::from_secs(n))
}

impl Profile {
    /// A preset by name; `None` if there is no such preset.
    ///
    /// - `httpx-defaults`: httpx's own defaults: 100 connections, 20 kept alive for 5 s, every
    ///   timeout 5 s.
    /// - `recommended`: the guide's advice: 256 / 128 / 30 s; connect 10 s, read 600 s, write 30 s,
    ///   pool 10 s. No retries, so that failures show as they are.
    /// - `recommended-retry`: `recommended` plus the guide's retry policy
    ///   ([`RetryPolicy::guide`]: 5 attempts, exponential backoff 1 s to 30 s, 429/500/502/503/504,
    ///   connection errors and read timeouts).
    /// - `new-client-per-request`: the anti-pattern (`httpx.post(...)` per call): a new connection
    ///   per request, closed by the client afterwards; httpx's default 5 s timeouts.
    /// - `requests-session`: a `requests.Session`: urllib3 pool of 10 kept alive forever, more
    ///   connections opened (and discarded) when it is full, no timeout at all.
    pub fn preset(name: &str) -> Option<Profile> {
        let base = Profile {
            name: name.to_string(),
            preset: Some(name.to_string()),
            client: ClientBackend::Native,
            reuse_client: true,
            max_connections: Some(100),
            max_keepalive_connections: Some(20),
            keepalive_expiry: OptDuration(secs(5)),
            timeout: Timeouts::all(secs(5)),
            http_version: HttpVersion::Http1,
            proxy: None,
            tls: TlsSettings::default(),
            retry: None,
        };
        let recommended = Profile {
            max_connections: Some(256),
            max_keepalive_connections: Some(128),
            keepalive_expiry: OptDuration(secs(30)),
            timeout: Timeouts {
                connect: OptDuration(secs(10)),
                read: OptDuration(secs(600)),
                write: OptDuration(secs(30)),
                pool: OptDuration(secs(10)),
            },
            ..base.clone()
        };
        Some(match name {
            "httpx-defaults" => base,
            "recommended" => recommended,
            "recommended-retry" => Profile {
                retry: Some(RetryPolicy::guide()),
                ..recommended
            },
            "new-client-per-request" => Profile {
                reuse_client: false,
                max_connections: None,
                max_keepalive_connections: Some(0),
                keepalive_expiry: OptDuration(None),
                ..base
            },
            "requests-session" => Profile {
                max_connections: None,
                max_keepalive_connections: Some(10),
                keepalive_expiry: OptDuration(None),
                timeout: Timeouts::all(None),
                ..base
            },
            _ => return None,
        })
    }

    /// Checks settings that cannot hold together. Returns the key and a message.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.max_connections == Some(0) {
            return Err((
                "max_connections",
                "expected at least 1 (or \"none\" for unlimited), found 0".into(),
            ));
        }
        if let (Some(keep), Some(max)) = (self.max_keepalive_connections, self.max_connections)
            && keep > max
        {
            return Err((
                "max_keepalive_connections",
                format!("expected at most max_connections ({max}), found {keep}"),
            ));
        }
        if let Some(p) = &self.proxy
            && !p.starts_with("http://")
        {
            return Err((
                "proxy",
                format!("expected an http:// proxy URL, found {p:?}"),
            ));
        }
        if let Some(ca) = &self.tls.ca_file
            && !ca.is_file()
        {
            return Err((
                "tls.ca_file",
                format!("expected a readable PEM file, found {}", ca.display()),
            ));
        }
        if let Some(r) = &self.retry {
            if self.client.is_driver() {
                return Err((
                    "retry",
                    format!(
                        "retries are not supported yet with client = \"{}\" (remove the retry \
                         table, or use a preset without retries)",
                        self.client.name()
                    ),
                ));
            }
            r.validate()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_preset_exists_and_is_valid() {
        for name in PRESET_NAMES {
            let p = Profile::preset(name).unwrap();
            assert_eq!(p.name, name);
            p.validate().unwrap();
        }
        assert!(Profile::preset("nope").is_none());
    }

    #[test]
    fn recommended_matches_the_guide() {
        let p = Profile::preset("recommended").unwrap();
        assert_eq!(p.max_connections, Some(256));
        assert_eq!(p.max_keepalive_connections, Some(128));
        assert_eq!(p.keepalive_expiry.get(), Some(Duration::from_secs(30)));
        assert_eq!(p.timeout.read.get(), Some(Duration::from_secs(600)));
        assert_eq!(p.timeout.pool.get(), Some(Duration::from_secs(10)));
        assert_eq!(p.retry, None);
        let r = Profile::preset("recommended-retry").unwrap();
        assert_eq!(r.retry, Some(RetryPolicy::guide()));
        assert_eq!(
            Profile { retry: None, ..r }.max_connections,
            p.max_connections
        );
    }

    #[test]
    fn backends_and_versions_parse_by_their_names_and_list_them_when_unknown() {
        for b in ClientBackend::ALL {
            assert_eq!(b.name().parse::<ClientBackend>(), Ok(b));
        }
        for v in HttpVersion::ALL {
            assert_eq!(v.name().parse::<HttpVersion>(), Ok(v));
        }
        assert_eq!(
            "curl".parse::<ClientBackend>().unwrap_err(),
            "expected one of native, reqwest, httpx, found \"curl\""
        );
        assert_eq!(
            "h3".parse::<HttpVersion>().unwrap_err(),
            "expected one of http1, http2, auto, found \"h3\""
        );
    }

    #[test]
    fn an_httpx_profile_with_retries_is_refused_as_not_supported_yet() {
        let mut p = Profile::preset("recommended-retry").unwrap();
        p.client = ClientBackend::Httpx;
        let (key, msg) = p.validate().unwrap_err();
        assert_eq!(key, "retry");
        assert!(msg.contains("not supported yet"), "{msg}");
        p.retry = None;
        p.validate().unwrap();
    }

    #[test]
    fn keepalive_above_the_connection_cap_is_rejected() {
        let mut p = Profile::preset("httpx-defaults").unwrap();
        p.max_keepalive_connections = Some(200);
        let (key, msg) = p.validate().unwrap_err();
        assert_eq!(key, "max_keepalive_connections");
        assert!(msg.contains("found 200"), "{msg}");
    }
}
