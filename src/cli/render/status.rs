//! The screen of `courier status`: one `key: value` line per figure, pure.

use std::fmt::Write as _;

use crate::views::StatusView;

/// Seconds as `3d 4h`, `2h 5m`, `4m 10s`, `12s`.
pub fn human_secs(s: u64) -> String {
    let (d, h, m) = (s / 86_400, s / 3600 % 24, s / 60 % 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {}s", s % 60)
    } else {
        format!("{s}s")
    }
}

/// Bytes as `512 B`, `3.4 KiB`, `12.0 MiB`, `1.2 GiB`.
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = b as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// `courier status`.
pub fn render_status(s: &StatusView) -> String {
    let mut out = String::new();
    let na = "- (daemon not running)";
    let window = s.rate_window_secs;
    let rate = |r: Option<f64>| {
        r.map_or_else(
            || na.to_string(),
            |r| format!("{r:.2} events/s (last {window}s)"),
        )
    };
    let _ = writeln!(out, "courier {}", s.version);
    if !s.running {
        let _ = writeln!(out, "(read from the journal; the daemon is not running)");
    }
    let _ = writeln!(
        out,
        "uptime:        {}",
        s.uptime_secs.map_or_else(|| na.to_string(), human_secs)
    );
    let _ = writeln!(out, "intake:        {}", rate(s.intake_per_sec));
    let _ = writeln!(out, "delivery:      {}", rate(s.delivery_per_sec));
    let _ = writeln!(out, "backlog:       {} events", s.backlog);
    let e = &s.endpoints;
    let _ = writeln!(
        out,
        "endpoints:     {} ({} active, {} paused, {} down)",
        e.total, e.active, e.paused, e.down
    );
    let _ = writeln!(out, "dead letters:  {}", s.dead_letters);
    let oldest = match &s.oldest_waiting {
        Some(o) => format!(
            "{} ago on {} (accepted {})",
            human_secs(o.age_secs),
            super::one_line(&o.endpoint),
            o.enqueued_at
        ),
        None => "- (nothing waiting)".into(),
    };
    let _ = writeln!(out, "oldest event:  {oldest}");
    let _ = writeln!(
        out,
        "journal:       {}{}",
        s.journal_bytes.map_or_else(|| "-".to_string(), human_bytes),
        if s.storage == "ok" {
            String::new()
        } else {
            format!(", not committing: {}", s.storage)
        }
    );
    let _ = writeln!(out, "events held:   {}", held(s));
    let _ = writeln!(
        out,
        "retention:     {}",
        s.retention.as_deref().map_or_else(
            || na.to_string(),
            |r| format!(
                "{} (delivered events kept for back-fill)",
                super::one_line(r)
            )
        )
    );
    out
}

/// The bytes of events the journal holds, against `--max-journal-bytes` when set.
fn held(s: &StatusView) -> String {
    match (s.held_bytes, s.max_journal_bytes) {
        (None, _) => "-".into(),
        (Some(h), None) => format!("{} (no --max-journal-bytes)", human_bytes(h)),
        (Some(h), Some(max)) => {
            let pct = (h as f64 * 100.0 / max.max(1) as f64).round();
            format!(
                "{} of {} ({pct:.0}% of --max-journal-bytes)",
                human_bytes(h),
                human_bytes(max)
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::{EndpointCounts, OldestWaiting};

    fn view() -> StatusView {
        StatusView {
            version: "0.1.0".into(),
            running: true,
            uptime_secs: Some(3_725),
            intake_per_sec: Some(12.5),
            delivery_per_sec: Some(0.0),
            rate_window_secs: 60,
            backlog: 42,
            endpoints: EndpointCounts {
                total: 3,
                active: 1,
                paused: 1,
                down: 1,
            },
            dead_letters: 7,
            oldest_waiting: Some(OldestWaiting {
                endpoint: "acme\nchat".into(),
                enqueued_at: "2026-01-01T00:00:00.000Z".into(),
                age_secs: 90,
            }),
            journal_bytes: Some(3 << 20),
            storage: "ok".into(),
            retention: Some("72h".into()),
            held_bytes: Some(1536),
            max_journal_bytes: None,
        }
    }

    #[test]
    fn one_screen_with_every_figure() {
        let out = render_status(&view());
        for want in [
            "courier 0.1.0\n",
            "uptime:        1h 2m\n",
            "intake:        12.50 events/s (last 60s)\n",
            "delivery:      0.00 events/s",
            "backlog:       42 events\n",
            "endpoints:     3 (1 active, 1 paused, 1 down)\n",
            "dead letters:  7\n",
            "oldest event:  1m 30s ago on acme chat (accepted 2026-01-01T00:00:00.000Z)\n",
            "journal:       3.0 MiB\n",
            "events held:   1.5 KiB (no --max-journal-bytes)\n",
            "retention:     72h (delivered events kept for back-fill)\n",
        ] {
            assert!(out.contains(want), "{want:?} missing in:\n{out}");
        }
        assert!(!out.contains("not running"));
    }

    #[test]
    fn offline_and_failing_say_so() {
        let mut v = view();
        v.running = false;
        v.uptime_secs = None;
        v.intake_per_sec = None;
        v.oldest_waiting = None;
        v.storage = "STORAGE_FULL".into();
        let out = render_status(&v);
        assert!(out.contains("the daemon is not running"), "{out}");
        assert!(
            out.contains("uptime:        - (daemon not running)"),
            "{out}"
        );
        assert!(
            out.contains("intake:        - (daemon not running)\n"),
            "no rate window without rates: {out}"
        );
        assert!(out.contains("oldest event:  - (nothing waiting)"), "{out}");
        assert!(out.contains("not committing: STORAGE_FULL"), "{out}");
        v.retention = None;
        v.max_journal_bytes = Some(4 << 20);
        v.held_bytes = Some(3 << 20);
        let out = render_status(&v);
        assert!(
            out.contains("events held:   3.0 MiB of 4.0 MiB (75% of --max-journal-bytes)\n"),
            "{out}"
        );
        assert!(
            out.contains("retention:     - (daemon not running)\n"),
            "{out}"
        );
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_secs(2 * 86_400 + 3 * 3600), "2d 3h");
    }
}
