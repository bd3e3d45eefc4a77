//! Local socket evidence: what the kernel says about this machine's side of the connections.
//!
//! In: the peer addresses the load goes to (the target, or the proxy). Out: one [`SocketSample`]
//! per call of [`Sampler::sample`]: TCP sockets towards the peers by state (ESTABLISHED,
//! TIME_WAIT, …) from `/proc/net/tcp` and `/proc/net/tcp6` of this network namespace, local
//! ephemeral ports they hold against `ip_local_port_range`, the TCP retransmit delta (RetransSegs
//! of `/proc/net/snmp`), and this process's open file descriptors against RLIMIT_NOFILE.
//!
//! These are the facts that separate a client-side cause (ports in TIME_WAIT near the range, fds
//! near the limit) from a server-side one (refusals while local port use stays low). Socket counts
//! are per network namespace, not per process: other programs talking to the same peer count too.
//! Sampling reads /proc; it runs on a blocking thread once a second and measures its own cost.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use procfs::net::{TcpNetEntry, TcpState};
use serde::{Deserialize, Serialize};

/// One look at the local sockets.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct SocketSample {
    /// Sockets towards the peers in ESTABLISHED.
    pub established: u32,
    /// …in SYN_SENT (connects in progress).
    pub syn_sent: u32,
    /// …in TIME_WAIT (closed by this side first; each holds a local port for ~60 s).
    pub time_wait: u32,
    /// …in CLOSE_WAIT (the peer closed, this side has not yet).
    pub close_wait: u32,
    /// …in FIN_WAIT1/FIN_WAIT2/CLOSING/LAST_ACK.
    pub closing: u32,
    /// Distinct local ports in the ephemeral range held by sockets towards the peers.
    pub ports_in_use: u32,
    /// TCP segments retransmitted since the previous sample (whole namespace).
    pub retransmits: u64,
    /// File descriptors open in this process.
    pub open_fds: u32,
    /// How long this sample took to take, in microseconds.
    pub cost_us: u32,
}

/// Facts about the machine that samples are measured against.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct SocketLimits {
    /// `net.ipv4.ip_local_port_range`, inclusive.
    pub port_range: (u16, u16),
    /// The soft RLIMIT_NOFILE of this process.
    pub fd_limit: u64,
}

impl SocketLimits {
    /// Reads the port range and the fd limit (falls back to Linux defaults when unreadable).
    pub fn read() -> SocketLimits {
        let port_range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|t| {
                let mut it = t.split_whitespace().filter_map(|v| v.parse::<u16>().ok());
                Some((it.next()?, it.next()?))
            })
            .unwrap_or((32768, 60999));
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into the struct we pass; no other memory is touched.
        let fd_limit = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
            lim.rlim_cur
        } else {
            0
        };
        SocketLimits {
            port_range,
            fd_limit,
        }
    }

    /// Number of ports in the ephemeral range.
    pub fn port_range_size(&self) -> u32 {
        u32::from(self.port_range.1.saturating_sub(self.port_range.0)) + 1
    }
}

/// Samples the local sockets towards a set of peers.
pub struct Sampler {
    peers: Vec<SocketAddr>,
    limits: SocketLimits,
    last_retrans: Option<u64>,
    ports: HashSet<u16>,
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl Sampler {
    /// A sampler for sockets whose remote end is one of `peers`.
    pub fn new(peers: Vec<SocketAddr>) -> Sampler {
        let peers = peers
            .into_iter()
            .map(|p| SocketAddr::new(canonical(p.ip()), p.port()))
            .collect();
        Sampler {
            peers,
            limits: SocketLimits::read(),
            last_retrans: None,
            ports: HashSet::new(),
        }
    }

    /// The limits read when the sampler was made.
    pub fn limits(&self) -> SocketLimits {
        self.limits
    }

    /// Takes one sample. `None` when /proc cannot be read (not Linux, or restricted).
    pub fn sample(&mut self) -> Option<SocketSample> {
        let t = Instant::now();
        let mut s = SocketSample::default();
        self.ports.clear();
        let v4 = procfs::net::tcp().ok()?;
        let v6 = procfs::net::tcp6().unwrap_or_default();
        for e in v4.iter().chain(v6.iter()) {
            self.count(e, &mut s);
        }
        s.ports_in_use = self.ports.len() as u32;
        if let Ok(snmp) = procfs::net::snmp() {
            let now = snmp.tcp_retrans_segs;
            s.retransmits = self
                .last_retrans
                .map_or(0, |before| now.saturating_sub(before));
            self.last_retrans = Some(now);
        }
        s.open_fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u32);
        s.cost_us = t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
        Some(s)
    }

    fn count(&mut self, e: &TcpNetEntry, s: &mut SocketSample) {
        let remote = SocketAddr::new(canonical(e.remote_address.ip()), e.remote_address.port());
        if !self.peers.contains(&remote) {
            return;
        }
        match e.state {
            TcpState::Established => s.established += 1,
            TcpState::SynSent => s.syn_sent += 1,
            TcpState::TimeWait => s.time_wait += 1,
            TcpState::CloseWait => s.close_wait += 1,
            TcpState::FinWait1 | TcpState::FinWait2 | TcpState::Closing | TcpState::LastAck => {
                s.closing += 1
            }
            _ => {}
        }
        let port = e.local_address.port();
        if (self.limits.port_range.0..=self.limits.port_range.1).contains(&port) {
            self.ports.insert(port);
        }
    }
}

/// Peaks and totals of a run's samples.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SocketSummary {
    /// The limits the run was measured against.
    pub limits: SocketLimits,
    /// The sample taken just before the load started (leftovers of earlier runs show here).
    pub at_start: SocketSample,
    /// Samples taken.
    pub samples: u32,
    /// Highest ESTABLISHED count.
    pub peak_established: u32,
    /// Highest TIME_WAIT count.
    pub peak_time_wait: u32,
    /// Highest CLOSE_WAIT count.
    pub peak_close_wait: u32,
    /// Highest count of local ephemeral ports held towards the peers.
    pub peak_ports_in_use: u32,
    /// `peak_ports_in_use` as a percentage of the ephemeral range.
    pub peak_port_use_pct: f64,
    /// TCP retransmits during the run.
    pub retransmits: u64,
    /// Highest open file descriptor count.
    pub peak_open_fds: u32,
    /// Slowest sample, in microseconds (the sampler's own cost).
    pub max_cost_us: u32,
}

impl SocketSummary {
    /// Summarizes samples taken under `limits`, after `at_start` was taken before the load.
    pub fn of<'a>(
        limits: SocketLimits,
        at_start: SocketSample,
        samples: impl IntoIterator<Item = &'a SocketSample>,
    ) -> SocketSummary {
        let mut out = SocketSummary {
            limits,
            at_start,
            ..SocketSummary::default()
        };
        for s in samples {
            out.samples += 1;
            out.peak_established = out.peak_established.max(s.established);
            out.peak_time_wait = out.peak_time_wait.max(s.time_wait);
            out.peak_close_wait = out.peak_close_wait.max(s.close_wait);
            out.peak_ports_in_use = out.peak_ports_in_use.max(s.ports_in_use);
            out.retransmits += s.retransmits;
            out.peak_open_fds = out.peak_open_fds.max(s.open_fds);
            out.max_cost_us = out.max_cost_us.max(s.cost_us);
        }
        let range = f64::from(limits.port_range_size());
        out.peak_port_use_pct = (f64::from(out.peak_ports_in_use) * 1000.0 / range).round() / 10.0;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn established_connections_to_a_peer_are_counted_and_others_are_not() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = listener.local_addr().unwrap();
        let other = TcpListener::bind("127.0.0.1:0").unwrap();
        let clients: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(peer).unwrap()).collect();
        let _unrelated = TcpStream::connect(other.local_addr().unwrap()).unwrap();
        let mut sampler = Sampler::new(vec![peer]);
        let s = sampler.sample().expect("/proc is readable on Linux");
        assert_eq!(s.established, 3);
        assert!(s.open_fds >= 6, "{} fds", s.open_fds);
        drop(clients);
    }

    #[test]
    fn closing_first_leaves_time_wait_on_this_side() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = listener.local_addr().unwrap();
        for _ in 0..5 {
            let c = TcpStream::connect(peer).unwrap();
            let (server_side, _) = listener.accept().unwrap();
            drop(c); // client closes first → client side goes to TIME_WAIT
            drop(server_side);
        }
        let mut sampler = Sampler::new(vec![peer]);
        let s = sampler.sample().unwrap();
        // The last close may still be finishing its FIN exchange when sampled.
        assert_eq!(s.time_wait + s.closing, 5, "{s:?}");
        assert!(s.time_wait >= 4, "{s:?}");
        let range = sampler.limits().port_range;
        assert!(range.0 <= range.1);
    }

    #[test]
    fn the_summary_keeps_peaks_and_sums_retransmits() {
        let limits = SocketLimits {
            port_range: (1000, 1999),
            fd_limit: 1024,
        };
        let a = SocketSample {
            time_wait: 10,
            ports_in_use: 100,
            retransmits: 2,
            ..SocketSample::default()
        };
        let b = SocketSample {
            time_wait: 4,
            ports_in_use: 500,
            retransmits: 3,
            ..SocketSample::default()
        };
        let s = SocketSummary::of(limits, SocketSample::default(), [&a, &b]);
        assert_eq!(
            (s.samples, s.peak_time_wait, s.peak_ports_in_use),
            (2, 10, 500)
        );
        assert_eq!(s.retransmits, 5);
        assert_eq!(s.peak_port_use_pct, 50.0);
    }
}
