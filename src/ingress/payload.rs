//! What an incoming message must look like (Custom Messenger's incoming webhook): the check of
//! an inbound body, bytes from the internet, before it is enqueued byte for byte.

use serde_json::Value;

/// Checks an incoming message: a JSON object with string `sender_id` (non-empty) and `text`,
/// optional string `sender_name`, object `metadata`, and `attachments` of `{type, url}` with
/// type `image`, `file` or `audio` and an http(s) URL.
pub fn validate_payload(body: &[u8]) -> Result<(), String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not valid JSON ({e})"))?;
    let Some(obj) = v.as_object() else {
        return Err("the body must be a JSON object".into());
    };
    match obj.get("sender_id") {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 256 => {}
        Some(Value::String(_)) => return Err("sender_id must be 1-256 characters".into()),
        Some(_) => return Err("sender_id must be a string".into()),
        None => return Err("sender_id is required".into()),
    }
    match obj.get("text") {
        Some(Value::String(_)) => {}
        Some(_) => return Err("text must be a string".into()),
        None => return Err("text is required".into()),
    }
    if let Some(n) = obj.get("sender_name")
        && !n.is_string()
    {
        return Err("sender_name must be a string".into());
    }
    if let Some(m) = obj.get("metadata")
        && !m.is_object()
    {
        return Err("metadata must be an object".into());
    }
    if let Some(a) = obj.get("attachments") {
        let Some(list) = a.as_array() else {
            return Err("attachments must be an array".into());
        };
        for (i, item) in list.iter().enumerate() {
            let ty = item.get("type").and_then(Value::as_str);
            if !matches!(ty, Some("image" | "file" | "audio")) {
                return Err(format!(
                    "attachments[{i}].type must be image, file or audio"
                ));
            }
            let url = item.get("url").and_then(Value::as_str).unwrap_or("");
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(format!("attachments[{i}].url must be an http(s) URL"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads() {
        assert!(validate_payload(br#"{"sender_id":"user_42","text":"Hello!"}"#).is_ok());
        assert!(validate_payload(
            br#"{"sender_id":"u","text":"","sender_name":"Dmytro","metadata":{"source":"website"},
                "attachments":[{"type":"image","url":"https://x/y.png"}]}"#
        )
        .is_ok());
        let e = |b: &[u8]| validate_payload(b).unwrap_err();
        assert!(e(b"{\"text\":\"Hello\"}").contains("sender_id is required"));
        assert!(e(b"{\"sender_id\":\"u\"}").contains("text is required"));
        assert!(e(b"{\"sender_id\":42,\"text\":\"x\"}").contains("sender_id must be a string"));
        assert!(e(b"{\"sender_id\":\"\",\"text\":\"x\"}").contains("1-256"));
        assert!(e(b"[1]").contains("object"));
        assert!(e(b"not json").contains("not valid JSON"));
        assert!(e(br#"{"sender_id":"u","text":"x","metadata":[]}"#).contains("metadata"));
        assert!(e(br#"{"sender_id":"u","text":"x","attachments":[{"type":"video","url":"https://x"}]}"#)
            .contains("attachments[0].type"));
        assert!(
            e(br#"{"sender_id":"u","text":"x","attachments":[{"type":"file","url":"ftp://x"}]}"#)
                .contains("attachments[0].url")
        );
    }
}
