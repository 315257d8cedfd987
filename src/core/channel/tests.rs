//! Unit tests of the channel settings: defaults, codes and the merge of updates.

use super::*;

#[test]
fn channel_bodies() {
    let c = channel_config(br#"{"endpoint":"happ","secret":"k"}"#, None).unwrap();
    assert_eq!((c.rate_limit, c.burst), (100, 100));
    assert_eq!(
        channel_config(br#"{"endpoint":"happ","rate_limit":0}"#, None)
            .unwrap_err()
            .code(),
        "INVALID_RATE_LIMIT"
    );
    assert_eq!(
        channel_config(br#"{"endpoint":"a/b"}"#, None)
            .unwrap_err()
            .code(),
        "ENDPOINT_NOT_FOUND"
    );
    assert_eq!(
        channel_config(b"{}", None).unwrap_err().code(),
        "INVALID_JSON"
    );
    assert_eq!(
        channel_config(br#"{"endpoint":".."}"#, None)
            .unwrap_err()
            .code(),
        "ENDPOINT_NOT_FOUND"
    );
}

/// Regression: an update that named only the rate removed the secret (turning off the
/// channel's authentication) and reset the burst. Every field must keep its value unless
/// the update names it; only an explicit `"secret": null` removes the secret.
#[test]
fn channel_updates_merge_every_field() {
    let cur = ChannelConfig {
        endpoint: "happ".into(),
        secret: Some("k".into()),
        rate_limit: 10,
        burst: 30,
        security: Default::default(),
    };
    let upd = |b: &str| channel_config(b.as_bytes(), Some(&cur)).unwrap();
    assert_eq!(upd("{}"), cur, "an empty update changes nothing");
    assert_eq!(
        upd(r#"{"endpoint":"other"}"#),
        ChannelConfig {
            endpoint: "other".into(),
            ..cur.clone()
        }
    );
    assert_eq!(
        upd(r#"{"secret":"k2"}"#),
        ChannelConfig {
            secret: Some("k2".into()),
            ..cur.clone()
        }
    );
    assert_eq!(
        upd(r#"{"secret":null}"#),
        ChannelConfig {
            secret: None,
            ..cur.clone()
        }
    );
    assert_eq!(
        upd(r#"{"endpoint":"happ","rate_limit":50}"#),
        ChannelConfig {
            rate_limit: 50,
            ..cur.clone()
        }
    );
    assert_eq!(
        upd(r#"{"burst":5}"#),
        ChannelConfig {
            burst: 5,
            ..cur.clone()
        }
    );
}

#[test]
fn specs_round_trip_the_stored_shape() {
    let c = channel_config(br#"{"endpoint":"happ","rate_limit":7}"#, None).unwrap();
    assert_eq!(c.burst, 7, "the burst defaults to the rate");
    assert_eq!(ChannelSpec::from_config(&c).into_config(), c);
}
