//! A caching resolver for the HTTP agents.
//!
//! It exists because ureq looks up the host of every request, even one that then goes over a pooled
//! keep-alive connection: see [`LookupResolver`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

use super::phase::Phases;
use crate::protocol::Phase;

/// How long an address looked up is used again: as long as curl keeps one in its DNS cache.
const DNS_CACHE_TTL: Duration = Duration::from_secs(60);
/// The most hosts remembered; past it, stale entries are dropped, then all of them.
const DNS_CACHE_HOSTS: usize = 256;

/// The system resolver, with failed look-ups reported as "host not found" rather than a bare I/O
/// error, and answers kept for [`DNS_CACHE_TTL`].
///
/// ureq resolves the host of every request, even one that then goes over a pooled keep-alive
/// connection. A batch worker fetches thousands of URLs from a few hosts; without the cache each one
/// would cost a `getaddrinfo` (files read, often a DNS round trip), on exactly the slow network that
/// watchdog is for. Failures are not kept: the next item asks again.
#[derive(Debug, Default)]
pub(super) struct LookupResolver<R = DefaultResolver> {
    system: R,
    /// `host:port` to when it was looked up and its addresses.
    cache: Mutex<HashMap<String, (Instant, ResolvedSocketAddrs)>>,
    /// Told of every look-up that misses the cache.
    pub(super) phases: Arc<Phases>,
}

impl<R: Default> LookupResolver<R> {
    pub(super) fn new(phases: Arc<Phases>) -> LookupResolver<R> {
        LookupResolver {
            system: R::default(),
            cache: Mutex::default(),
            phases,
        }
    }
}

impl<R: Resolver> Resolver for LookupResolver<R> {
    fn resolve(
        &self,
        uri: &Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let key = uri.authority().map(|authority| {
            let default_port = if uri.scheme_str() == Some("https") {
                443
            } else {
                80
            };
            format!(
                "{}:{}",
                authority.host(),
                authority.port_u16().unwrap_or(default_port)
            )
        });
        if let (Some(key), Ok(cache)) = (&key, self.cache.lock()) {
            if let Some((at, addrs)) = cache.get(key) {
                if at.elapsed() < DNS_CACHE_TTL {
                    return Ok(addrs.clone());
                }
            }
        }
        let host_port = super::phase::host_port(uri);
        self.phases.send(Phase::Resolving, host_port.clone());
        #[cfg(feature = "test-hooks")]
        if uri.host().is_some_and(|host| self.phases.is_silent(host)) {
            return Err(silent(timeout));
        }
        let addrs = match self.system.resolve(uri, config, timeout) {
            Err(ureq::Error::Io(_)) => return Err(ureq::Error::HostNotFound),
            other => other?,
        };
        if let (Some(key), Ok(mut cache)) = (key, self.cache.lock()) {
            if cache.len() >= DNS_CACHE_HOSTS {
                cache.retain(|_, (at, _)| at.elapsed() < DNS_CACHE_TTL);
                if cache.len() >= DNS_CACHE_HOSTS {
                    cache.clear();
                }
            }
            cache.insert(key, (Instant::now(), addrs.clone()));
        }
        // Past the look-up: what comes next is a new connection (whose marks say so) or a pooled one,
        // on which the request goes out at once.
        self.phases.send(Phase::Request, host_port);
        Ok(addrs)
    }
}

/// Test-only (see [`super::phase::SILENT_HOSTS_ENV`]): a resolver that never answers, until the
/// look-up's own timeout (`--connect-timeout`) if there is one.
#[cfg(feature = "test-hooks")]
fn silent(timeout: NextTimeout) -> ureq::Error {
    if timeout.after.is_not_happening() {
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
    std::thread::sleep(*timeout.after);
    ureq::Error::Timeout(ureq::Timeout::Resolve)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use ureq::Agent;

    /// Answers 127.0.0.1 for any host but `nowhere`, counting the look-ups.
    #[derive(Debug, Default)]
    struct CountingResolver(AtomicUsize);

    impl Resolver for CountingResolver {
        fn resolve(
            &self,
            uri: &Uri,
            _: &ureq::config::Config,
            _: NextTimeout,
        ) -> Result<ResolvedSocketAddrs, ureq::Error> {
            self.0.fetch_add(1, Ordering::SeqCst);
            if uri.host() == Some("nowhere") {
                return Err(ureq::Error::Io(io::Error::other("no such host")));
            }
            let mut addrs = DefaultResolver::default().empty();
            addrs.push(std::net::SocketAddr::from(([127, 0, 0, 1], 80)));
            Ok(addrs)
        }
    }

    #[test]
    fn looked_up_hosts_are_remembered_and_failures_are_not() {
        let resolver = LookupResolver::<CountingResolver>::default();
        let config = Agent::config_builder().build();
        let timeout = NextTimeout {
            after: Duration::from_secs(5).into(),
            reason: ureq::Timeout::Resolve,
            per_read: None,
            per_write: None,
        };
        let resolve = |url: &str| {
            let uri: Uri = url.parse().unwrap();
            resolver.resolve(&uri, &config, timeout)
        };
        for url in ["http://a/1.jpg", "http://a/2.jpg", "http://a:80/3.jpg"] {
            assert_eq!(resolve(url).map(|a| a.len()).ok(), Some(1));
        }
        assert_eq!(
            resolver.system.0.load(Ordering::SeqCst),
            1,
            "one look-up for host a"
        );
        assert!(resolve("https://a/4.jpg").is_ok());
        assert!(resolve("http://b/1.jpg").is_ok());
        assert_eq!(
            resolver.system.0.load(Ordering::SeqCst),
            3,
            "another port, another host"
        );
        for _ in 0..2 {
            assert!(matches!(
                resolve("http://nowhere/x"),
                Err(ureq::Error::HostNotFound)
            ));
        }
        assert_eq!(
            resolver.system.0.load(Ordering::SeqCst),
            5,
            "failures are asked again"
        );
    }
}
