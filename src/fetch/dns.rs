//! A caching resolver in front of libcurl.
//!
//! watchdog looks up the host it connects to itself and hands the answer to libcurl
//! (`CURLOPT_RESOLVE`), for three reasons: a look-up is a phase of its own (a supervisor that stops an
//! attempt stuck in it reports a `dns_error`, or a `proxy_error` for the proxy's name), a look-up
//! that fails is a named failure with the host in it, and the answers are kept for [`DNS_CACHE_TTL`]
//! the way curl keeps them. Only the host the connection goes to is looked up: through an HTTP proxy
//! or `socks5h://`/`socks4a://` that is the proxy, never the origin, whose name the proxy resolves
//! (a corporate network often has no DNS for outside names at all).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use super::phase::Phases;
use crate::protocol::Phase;

/// How long an address looked up is used again: as long as curl keeps one in its DNS cache.
const DNS_CACHE_TTL: Duration = Duration::from_secs(60);
/// The most hosts remembered; past it, stale entries are dropped, then all of them.
const DNS_CACHE_HOSTS: usize = 256;

/// Why a look-up gave no address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupError {
    /// The name has no address (or the resolver said so).
    NotFound,
    /// No answer within the look-up's time limit (`--connect-timeout`).
    TimedOut,
}

/// The system resolver (`getaddrinfo`), with answers kept for [`DNS_CACHE_TTL`]. Failures are not
/// kept: the next item asks again.
#[derive(Debug)]
pub struct LookupResolver<R: Lookup = SystemLookup> {
    system: Arc<R>,
    /// `host:port` to when it was looked up and its addresses.
    cache: Mutex<HashMap<String, (Instant, Vec<SocketAddr>)>>,
    /// Told of every look-up that misses the cache.
    pub(super) phases: Arc<Phases>,
}

/// Where addresses come from: the system resolver, or a table in tests.
pub trait Lookup: Send + Sync + 'static {
    fn lookup(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, LookupError>;
}

/// `getaddrinfo`, through the standard library.
#[derive(Debug, Default)]
pub struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, LookupError> {
        let addrs: Vec<SocketAddr> = (host, port)
            .to_socket_addrs()
            .map_err(|_| LookupError::NotFound)?
            .collect();
        if addrs.is_empty() {
            Err(LookupError::NotFound)
        } else {
            Ok(addrs)
        }
    }
}

/// The answer for one host: `None` when there was nothing to look up (an IP literal) or the cache
/// answered, else the fresh addresses to hand to libcurl.
pub type Fresh = Option<Vec<SocketAddr>>;

impl<R: Lookup + Default> LookupResolver<R> {
    pub fn new(phases: Arc<Phases>) -> LookupResolver<R> {
        LookupResolver {
            system: Arc::new(R::default()),
            cache: Mutex::default(),
            phases,
        }
    }
}

impl<R: Lookup> LookupResolver<R> {
    /// Looks up `host:port` unless the cache knows it, sending a `resolving` phase line (flagged as
    /// the proxy's when `proxy`) on a miss. `timeout` bounds the look-up (the system resolver has no
    /// limit of its own: it then runs on a thread that is left behind).
    pub fn resolve(
        &self,
        host: &str,
        port: u16,
        proxy: bool,
        timeout: Option<Duration>,
    ) -> Result<Fresh, LookupError> {
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if bare.parse::<IpAddr>().is_ok() {
            return Ok(None);
        }
        let key = format!("{}:{port}", bare.to_ascii_lowercase());
        if let Ok(cache) = self.cache.lock() {
            if let Some((at, _)) = cache.get(&key) {
                if at.elapsed() < DNS_CACHE_TTL {
                    return Ok(None);
                }
            }
        }
        self.phases.send(Phase::Resolving, Some(key.clone()), proxy);
        #[cfg(feature = "test-hooks")]
        if self.phases.is_silent(bare) {
            return Err(silent(timeout));
        }
        let addrs = match timeout {
            None => self.system.lookup(bare, port)?,
            Some(limit) => {
                let (tx, rx) = mpsc::channel();
                let system = Arc::clone(&self.system);
                let name = bare.to_string();
                std::thread::spawn(move || {
                    let _ = tx.send(system.lookup(&name, port));
                });
                rx.recv_timeout(limit)
                    .map_err(|_| LookupError::TimedOut)??
            }
        };
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= DNS_CACHE_HOSTS {
                cache.retain(|_, (at, _)| at.elapsed() < DNS_CACHE_TTL);
                if cache.len() >= DNS_CACHE_HOSTS {
                    cache.clear();
                }
            }
            cache.insert(key, (Instant::now(), addrs.clone()));
        }
        Ok(Some(addrs))
    }
}

/// The `CURLOPT_RESOLVE` entry that hands `addrs` to libcurl for `host:port`.
pub fn resolve_entry(host: &str, port: u16, addrs: &[SocketAddr]) -> String {
    let list: Vec<String> = addrs
        .iter()
        .map(|a| match a.ip() {
            IpAddr::V4(ip) => ip.to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
        })
        .collect();
    format!("{host}:{port}:{}", list.join(","))
}

/// Test-only (see [`super::phase::SILENT_HOSTS_ENV`]): a resolver that never answers, until the
/// look-up's own timeout (`--connect-timeout`) if there is one.
#[cfg(feature = "test-hooks")]
fn silent(timeout: Option<Duration>) -> LookupError {
    match timeout {
        None => loop {
            std::thread::sleep(Duration::from_secs(3600));
        },
        Some(limit) => {
            std::thread::sleep(limit);
            LookupError::TimedOut
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Answers 127.0.0.1 for any host but `nowhere`, counting the look-ups.
    #[derive(Debug, Default)]
    struct CountingLookup(AtomicUsize);

    impl Lookup for CountingLookup {
        fn lookup(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, LookupError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            if host == "nowhere" {
                return Err(LookupError::NotFound);
            }
            Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))])
        }
    }

    #[test]
    fn looked_up_hosts_are_remembered_and_failures_are_not() {
        let resolver = LookupResolver::<CountingLookup>::new(Arc::default());
        let looked_up = || resolver.system.0.load(Ordering::SeqCst);
        let first = resolver.resolve("a", 80, false, None);
        assert_eq!(first.map(|a| a.map(|a| a.len())), Ok(Some(1)));
        for _ in 0..2 {
            assert_eq!(resolver.resolve("A", 80, false, None), Ok(None), "cached");
        }
        assert_eq!(looked_up(), 1, "one look-up for host a");
        assert!(resolver.resolve("a", 443, false, None).is_ok());
        assert!(resolver
            .resolve("b", 80, false, Some(Duration::from_secs(5)))
            .is_ok());
        assert_eq!(looked_up(), 3, "another port, another host");
        for _ in 0..2 {
            assert_eq!(
                resolver.resolve("nowhere", 80, false, None),
                Err(LookupError::NotFound)
            );
        }
        assert_eq!(looked_up(), 5, "failures are asked again");
        assert_eq!(resolver.resolve("127.0.0.1", 80, false, None), Ok(None));
        assert_eq!(resolver.resolve("[::1]", 80, false, None), Ok(None));
        assert_eq!(looked_up(), 5, "IP literals are not looked up");
    }

    #[test]
    fn entries_for_libcurl_bracket_ipv6() {
        let addrs = [
            SocketAddr::from(([127, 0, 0, 1], 80)),
            "[::1]:80".parse().unwrap(),
        ];
        assert_eq!(
            resolve_entry("host.example", 80, &addrs),
            "host.example:80:127.0.0.1,[::1]"
        );
    }
}
