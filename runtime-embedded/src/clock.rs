//! The core's time from embassy's clock.
//!
//! The core counts monotonic milliseconds; embassy-time counts ticks since
//! boot. Milliseconds since boot are the core's [`Instant`], so a deadline
//! the core asks for maps straight back onto an embassy [`Timer`].

use embassy_time::Timer;
use tern_core::Instant;

/// Now, as the core counts time (milliseconds since boot).
pub fn now() -> Instant {
    Instant::from_millis(embassy_time::Instant::now().as_millis())
}

/// The embassy instant of a core deadline.
pub(crate) fn to_embassy(at: Instant) -> embassy_time::Instant {
    embassy_time::Instant::from_millis(at.as_millis())
}

/// Sleeps until `deadline`, or forever when there is none.
pub(crate) async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => Timer::at(to_embassy(at)).await,
        None => core::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_milliseconds() {
        let at = Instant::from_millis(123_456);
        assert_eq!(to_embassy(at).as_millis(), 123_456);
    }
}
