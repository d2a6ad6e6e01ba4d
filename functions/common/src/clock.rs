//! Timestamps in the two forms the schema stores: RFC 3339 strings and epoch seconds.
//!
//! RFC 3339 values are written with a fixed width (microseconds, `Z`), so that their
//! lexicographic order is their chronological order: the `by-kind` index sorts users by
//! `created_at` as a string.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in time, microsecond precision, as seconds and micros since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp {
    micros: i64,
}

impl Timestamp {
    /// The current wall-clock time.
    pub fn now() -> Self {
        SystemTime::now().into()
    }

    /// A timestamp from whole epoch seconds (the DynamoDB TTL attribute's unit).
    pub fn from_epoch_seconds(seconds: i64) -> Self {
        Self {
            micros: seconds.saturating_mul(1_000_000),
        }
    }

    /// Whole seconds since the epoch, rounded down.
    pub fn epoch_seconds(self) -> i64 {
        self.micros.div_euclid(1_000_000)
    }

    /// This timestamp moved `duration` later.
    pub fn plus(self, duration: Duration) -> Self {
        let micros = i64::try_from(duration.as_micros()).unwrap_or(i64::MAX);
        Self {
            micros: self.micros.saturating_add(micros),
        }
    }

    /// `YYYY-MM-DDTHH:MM:SS.ffffffZ`, always this width.
    pub fn to_rfc3339(self) -> String {
        let seconds = self.micros.div_euclid(1_000_000);
        let micros = self.micros.rem_euclid(1_000_000);
        let days = seconds.div_euclid(86_400);
        let secs_of_day = seconds.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z",
            secs_of_day / 3600,
            secs_of_day % 3600 / 60,
            secs_of_day % 60
        )
    }

    /// Whether `text` has exactly the shape [`Timestamp::to_rfc3339`] writes. Used to reject
    /// forged pagination cursors before they reach DynamoDB.
    pub fn is_canonical_rfc3339(text: &str) -> bool {
        let bytes = text.as_bytes();
        const SHAPE: &[u8] = b"dddd-dd-ddTdd:dd:dd.ddddddZ";
        bytes.len() == SHAPE.len()
            && bytes.iter().zip(SHAPE).all(|(b, s)| match s {
                b'd' => b.is_ascii_digit(),
                other => b == other,
            })
    }
}

impl From<SystemTime> for Timestamp {
    fn from(time: SystemTime) -> Self {
        let micros = match time.duration_since(UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_micros()).unwrap_or(i64::MAX),
            Err(before) => -i64::try_from(before.duration().as_micros()).unwrap_or(i64::MAX),
        };
        Self { micros }
    }
}

/// Howard Hinnant's `civil_from_days`: proleptic Gregorian date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(
            Timestamp::from_epoch_seconds(0).to_rfc3339(),
            "1970-01-01T00:00:00.000000Z"
        );
        // 2000-02-29 (leap day) 12:34:56 UTC
        assert_eq!(
            Timestamp::from_epoch_seconds(951_827_696).to_rfc3339(),
            "2000-02-29T12:34:56.000000Z"
        );
        assert_eq!(
            Timestamp::from_epoch_seconds(1_700_000_000)
                .plus(Duration::from_micros(42))
                .to_rfc3339(),
            "2023-11-14T22:13:20.000042Z"
        );
    }

    #[test]
    fn string_order_is_time_order() {
        let a = Timestamp::from_epoch_seconds(1_700_000_000);
        let b = a.plus(Duration::from_micros(1));
        let c = a.plus(Duration::from_secs(1));
        assert!(a.to_rfc3339() < b.to_rfc3339());
        assert!(b.to_rfc3339() < c.to_rfc3339());
    }

    #[test]
    fn recognises_only_its_own_shape() {
        assert!(Timestamp::is_canonical_rfc3339(
            &Timestamp::now().to_rfc3339()
        ));
        assert!(!Timestamp::is_canonical_rfc3339("2023-11-14T22:13:20Z"));
        assert!(!Timestamp::is_canonical_rfc3339(
            "2023-11-14T22:13:20.00004xZ"
        ));
    }

    #[test]
    fn epoch_seconds_round_down() {
        let t = Timestamp::from_epoch_seconds(10).plus(Duration::from_millis(999));
        assert_eq!(t.epoch_seconds(), 10);
    }
}
