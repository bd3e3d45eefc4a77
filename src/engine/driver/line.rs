//! The driver's stdout protocol: one JSON value per line, turned into typed [`Message`]s, and a
//! request line into the [`Outcome`] every backend emits.
//!
//! It parses and maps only; it does not read the pipe, time anything or record outcomes.

use std::time::Duration;

use serde::Deserialize;

use crate::metrics::{CallEnd, CallEnding, ConnUse, ErrorKind, Failure, Outcome};

/// One finished request as the driver reports it, times in microseconds:
/// `[end, total, pool_wait, conn, tcp, tls, age, idle, ttfb, body, status, bytes, class, message]`
/// (`end` counts from the driver's own start; `conn`: 0 none, 1 opened, 2 reused).
#[derive(Debug, Deserialize, PartialEq)]
pub struct RequestLine(
    u64,
    u64,
    u64,
    u8,
    Option<u64>,
    Option<u64>,
    u64,
    u64,
    Option<u64>,
    Option<u64>,
    Option<u16>,
    u64,
    Option<String>,
    Option<String>,
);

/// The driver is ready: the library imported and the client built.
#[derive(Debug, Deserialize, PartialEq)]
pub struct Ready {
    /// The library's version (`httpx.__version__`).
    pub httpx: String,
}

/// The driver's last line.
#[derive(Debug, Deserialize, PartialEq)]
pub struct End {
    /// Requests in flight that were cancelled at the end.
    pub aborted: u64,
    /// The driver stopped because it was interrupted.
    pub interrupted: bool,
}

/// One line of the driver's stdout.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Message {
    /// A finished request.
    Request(RequestLine),
    /// The driver is ready for `go`.
    Ready {
        /// What it runs.
        ready: Ready,
    },
    /// The driver could not start (a missing package, a client it cannot build).
    Error {
        /// Why, naming the package to install when one is missing.
        error: String,
    },
    /// The driver is done.
    End {
        /// How it ended.
        end: End,
    },
}

/// A line that is not part of the protocol.
#[derive(Debug, thiserror::Error)]
#[error("the driver printed a line connscope cannot read ({reason}): {excerpt}")]
pub struct BadLine {
    reason: String,
    excerpt: String,
}

/// Parses one stdout line.
pub fn parse(line: &str) -> Result<Message, BadLine> {
    serde_json::from_str(line).map_err(|e| BadLine {
        reason: e.to_string(),
        excerpt: line.chars().take(120).collect(),
    })
}

fn us(n: u64) -> Duration {
    Duration::from_micros(n)
}

/// The error class named `name`; an unknown name is `Other`, with the name kept in the message.
fn failure(name: &str, message: Option<String>) -> Failure {
    let message = message.unwrap_or_default();
    match ErrorKind::ALL.into_iter().find(|k| k.name() == name) {
        Some(kind) => Failure::new(kind, message),
        None => Failure::new(
            ErrorKind::Other,
            format!("unknown failure class {name:?} from the driver: {message}"),
        ),
    }
}

impl RequestLine {
    /// The request as an [`Outcome`] of one attempt (the driver does not retry), with its
    /// timestamp moved onto the profile's clock: `offset` is when the driver's clock started.
    pub fn into_outcome(self, offset: Duration) -> Outcome {
        let RequestLine(
            end,
            total,
            pool_wait,
            conn,
            tcp,
            tls,
            age,
            idle,
            ttfb,
            body,
            status,
            bytes,
            class,
            message,
        ) = self;
        let conn = match (conn, tcp) {
            (1, Some(tcp)) => ConnUse::New {
                dns: None,
                tcp: us(tcp),
                tls: tls.map(us),
            },
            (2, _) => ConnUse::Reused {
                age: us(age),
                idle: us(idle),
            },
            _ => ConnUse::None,
        };
        let failure = class.map(|c| Box::new(failure(&c, message)));
        let total = us(total);
        let ending = match failure {
            None => CallEnding::Succeeded,
            Some(_) => CallEnding::Failed,
        };
        Outcome {
            at: offset + us(end),
            total,
            lag: Duration::ZERO,
            pool_wait: us(pool_wait),
            conn,
            ttfb: ttfb.map(us),
            body: body.map(us),
            bytes,
            status,
            failure,
            retry_after: None,
            call: Some(CallEnd {
                attempts: 1,
                latency: total,
                backoff: Duration::ZERO,
                retry_after_capped: 0,
                ending,
            }),
            stream: None,
            job: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(line: &str) -> Outcome {
        match parse(line).unwrap() {
            Message::Request(r) => r.into_outcome(Duration::from_millis(5)),
            other => panic!("not a request line: {other:?}"),
        }
    }

    #[test]
    fn a_good_request_line_becomes_an_outcome_on_the_profiles_clock() {
        let o = request("[1000000,25000,100,1,300,null,0,0,20000,4000,200,2,null,null]");
        assert_eq!(o.at, Duration::from_micros(1_005_000));
        assert_eq!(o.total, Duration::from_millis(25));
        assert_eq!(o.pool_wait, Duration::from_micros(100));
        assert_eq!(
            o.conn,
            ConnUse::New {
                dns: None,
                tcp: Duration::from_micros(300),
                tls: None
            }
        );
        assert_eq!(o.ttfb, Some(Duration::from_millis(20)));
        assert_eq!(o.body, Some(Duration::from_millis(4)));
        assert_eq!((o.status, o.bytes), (Some(200), 2));
        assert!(o.failure.is_none());
        let call = o.call.unwrap();
        assert_eq!((call.attempts, call.ending), (1, CallEnding::Succeeded));
        assert_eq!(call.latency, o.total);
    }

    #[test]
    fn a_reused_connection_keeps_its_age_and_idle_time_and_a_failure_its_class() {
        let o = request(
            "[10,5000,4000,2,null,null,900,30,null,null,null,0,\"ReadTimeout\",\"ReadTimeout: \"]",
        );
        assert_eq!(
            o.conn,
            ConnUse::Reused {
                age: Duration::from_micros(900),
                idle: Duration::from_micros(30)
            }
        );
        assert_eq!(o.error_kind(), Some(ErrorKind::ReadTimeout));
        assert_eq!(o.call.unwrap().ending, CallEnding::Failed);
        let refused = request(
            "[10,300,0,1,null,null,0,0,null,null,null,0,\"ConnectRefused\",\"ConnectError: x\"]",
        );
        assert_eq!(
            refused.conn,
            ConnUse::None,
            "a connect that failed opened nothing"
        );
        assert_eq!(refused.error_kind(), Some(ErrorKind::ConnectRefused));
    }

    #[test]
    fn an_unknown_class_is_other_and_keeps_its_name() {
        let o = request("[10,300,0,0,null,null,0,0,null,null,null,0,\"Weird\",\"boom\"]");
        let f = o.failure.unwrap();
        assert_eq!(f.kind, ErrorKind::Other);
        assert!(
            f.message.contains("\"Weird\"") && f.message.contains("boom"),
            "{}",
            f.message
        );
    }

    #[test]
    fn control_lines_parse_and_garbage_is_an_error_with_an_excerpt() {
        assert_eq!(
            parse(r#"{"ready":{"httpx":"0.28.1"}}"#).unwrap(),
            Message::Ready {
                ready: Ready {
                    httpx: "0.28.1".into()
                }
            }
        );
        assert_eq!(
            parse(r#"{"end":{"aborted":3,"interrupted":false}}"#).unwrap(),
            Message::End {
                end: End {
                    aborted: 3,
                    interrupted: false
                }
            }
        );
        assert!(matches!(
            parse(r#"{"error":"cannot import httpx"}"#).unwrap(),
            Message::Error { .. }
        ));
        let e = parse("Traceback (most recent call last):").unwrap_err();
        assert!(e.to_string().contains("Traceback"), "{e}");
        assert!(parse("[1,2,3]").is_err(), "a short array is not a request");
    }
}
