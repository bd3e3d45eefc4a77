//! Header maps for HTTP/2 requests without an allocation per request (HTTP/1.1 requests are
//! written from bytes serialized once, see `engine::h1`).
//!
//! hyper's client writes a request's headers out of its `HeaderMap`, keeps the emptied map
//! and parses the response's headers into it. [`spare`] hands out a map for a request: one that a
//! finished response gave back through [`recycle`] (emptied, its capacity kept, so it already fits
//! the server's headers), or a new one with room for [`CAPACITY`] headers. A cloned template map
//! instead had exactly the template's capacity, and grew (two reallocations) while hyper parsed the
//! response into it: two allocations, two reallocations and their frees per request.
//!
//! The spares are per thread: a shard's requests and their connections run on the shard's thread.
//! (Measured when HTTP/1.1 still went through hyper: −1.6k instructions per request.)

use std::cell::RefCell;

use http::HeaderMap;

/// Headers a new map has room for: a request's, then its response's.
pub const CAPACITY: usize = 16;

/// Spare maps kept per thread at most (beyond that, a returned map is dropped).
const KEEP: usize = 64;

thread_local! {
    static SPARE: RefCell<Vec<HeaderMap>> = const { RefCell::new(Vec::new()) };
}

/// An empty header map for a request.
pub fn spare() -> HeaderMap {
    SPARE
        .with(|s| s.borrow_mut().pop())
        .unwrap_or_else(|| HeaderMap::with_capacity(CAPACITY))
}

/// Gives a map that is no longer needed (a read response's headers) back for later requests.
pub fn recycle(mut map: HeaderMap) {
    map.clear();
    SPARE.with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < KEEP {
            s.push(map);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::{HOST, USER_AGENT};

    #[test]
    fn a_recycled_map_comes_back_empty_with_its_capacity() {
        let mut map = spare();
        map.insert(HOST, "example.com".parse().unwrap());
        map.insert(USER_AGENT, "x".parse().unwrap());
        let capacity = map.capacity();
        recycle(map);
        let again = spare();
        assert!(again.is_empty());
        assert_eq!(again.capacity(), capacity);
        assert!(capacity >= CAPACITY);
    }
}
