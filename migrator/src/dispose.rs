//! Large trees freed off the critical path. Freeing a tree of a hundred thousand allocations
//! one by one takes milliseconds on the thread that drops it; at the points where the program
//! would otherwise wait for that with a core idle, a short-lived thread of its own drops it while
//! the caller goes on. The process may exit before that thread is done (the system takes the
//! memory back then); it holds nothing but the value.

/// Drops `value` on a thread of its own (or here, when no thread can be started).
pub fn in_background<T: Send + 'static>(value: T) {
    // A failed spawn drops the closure, and the value with it, here.
    let _ = std::thread::Builder::new()
        .name("free".into())
        .spawn(move || drop(value));
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    #[test]
    fn the_value_is_dropped() {
        let value = Arc::new(vec![1u8; 1 << 20]);
        let weak = Arc::downgrade(&value);
        super::in_background(value);
        let start = Instant::now();
        while weak.upgrade().is_some() {
            assert!(start.elapsed() < Duration::from_secs(10), "never dropped");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
