//! The typed methods of [`Client`]: one per v1 route, taking and returning the shapes of
//! [`crate::views`].

use bytes::Bytes;
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use hyper::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{ApiError, Client, Error, RawAnswer, paths};
use crate::views::{
    Accepted, AttemptList, BackfillRequest, Backfilled, BatchAccepted, BulkReplayed, CallResult,
    ChannelList, ChannelUpdate, ChannelView, DeadLetterCount, DeadLetterDetail, DeadLetterFilter,
    DeadLetterList, EndpointList, EndpointUpdate, EndpointView, Purged, Replayed, RetryResult,
    StatusView, TestResult,
};

const JSON: HeaderValue = HeaderValue::from_static("application/json");
const NDJSON: HeaderValue = HeaderValue::from_static("application/x-ndjson");
const X_EVENT_TYPE: HeaderName = HeaderName::from_static("x-event-type");
const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// The answer to a PUT: the view, and whether it was created (201) rather than updated (200).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved<T> {
    pub created: bool,
    pub view: T,
}

/// The optional request headers of an event.
#[derive(Debug, Clone, Copy, Default)]
pub struct EventOptions<'a> {
    /// `Content-Type` (the daemon's default: `application/json`).
    pub content_type: Option<&'a str>,
    /// `X-Event-Type`, delivered as `X-HAPP-Event`.
    pub event_type: Option<&'a str>,
    /// `Idempotency-Key`.
    pub idempotency_key: Option<&'a str>,
}

impl Client {
    /// A call whose 2xx answer is the JSON of `T`; non-2xx is [`Error::Api`].
    pub async fn json<T: DeserializeOwned>(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
    ) -> Result<(StatusCode, T), Error> {
        let answer = self.checked(method, path, headers, body).await?;
        match serde_json::from_slice(&answer.body) {
            Ok(v) => Ok((answer.status, v)),
            Err(e) => Err(Error::BadAnswer {
                status: answer.status,
                error: e.to_string(),
                body: answer.body,
            }),
        }
    }

    /// A call whose 2xx answer is the raw answer; non-2xx is [`Error::Api`].
    pub async fn checked(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
    ) -> Result<RawAnswer, Error> {
        let answer = self.call(method, path, headers, body).await?;
        if answer.status.is_success() {
            Ok(answer)
        } else {
            Err(Error::Api(ApiError::new(answer.status, answer.body)))
        }
    }

    async fn get<T: DeserializeOwned>(&mut self, path: &str) -> Result<T, Error> {
        Ok(self.json(Method::GET, path, &[], Bytes::new()).await?.1)
    }

    async fn post<T: DeserializeOwned>(&mut self, path: &str) -> Result<T, Error> {
        Ok(self.json(Method::POST, path, &[], Bytes::new()).await?.1)
    }

    async fn put<B: Serialize, T: DeserializeOwned>(
        &mut self,
        path: &str,
        body: &B,
    ) -> Result<Saved<T>, Error> {
        let body = serde_json::to_vec(body)
            .map_err(|e| Error::Invalid(format!("cannot encode request: {e}")))?;
        let (status, view) = self
            .json(Method::PUT, path, &[(CONTENT_TYPE, JSON)], body.into())
            .await?;
        Ok(Saved {
            created: status == StatusCode::CREATED,
            view,
        })
    }

    async fn delete(&mut self, path: &str) -> Result<(), Error> {
        self.checked(Method::DELETE, path, &[], Bytes::new())
            .await
            .map(drop)
    }

    // ---- endpoints

    /// `PUT /v1/endpoints/{id}`: create or update.
    pub async fn put_endpoint(
        &mut self,
        id: &str,
        update: &EndpointUpdate,
    ) -> Result<Saved<EndpointView>, Error> {
        self.put(&paths::endpoint(id), update).await
    }

    /// `PATCH /v1/endpoints/{id}`: changes only the given settings of an existing endpoint.
    pub async fn patch_endpoint(
        &mut self,
        id: &str,
        update: &EndpointUpdate,
    ) -> Result<EndpointView, Error> {
        let body = serde_json::to_vec(update)
            .map_err(|e| Error::Invalid(format!("cannot encode request: {e}")))?;
        let path = paths::endpoint(id);
        let headers = [(CONTENT_TYPE, JSON)];
        Ok(self
            .json(Method::PATCH, &path, &headers, body.into())
            .await?
            .1)
    }

    /// `GET /v1/endpoints`.
    pub async fn endpoints(&mut self) -> Result<EndpointList, Error> {
        self.get(paths::ENDPOINTS).await
    }

    /// `GET /v1/endpoints/{id}`.
    pub async fn endpoint(&mut self, id: &str) -> Result<EndpointView, Error> {
        self.get(&paths::endpoint(id)).await
    }

    /// `POST /v1/endpoints/{id}/pause`.
    pub async fn pause_endpoint(&mut self, id: &str) -> Result<EndpointView, Error> {
        self.post(&paths::endpoint_action(id, "pause")).await
    }

    /// `POST /v1/endpoints/{id}/resume`.
    pub async fn resume_endpoint(&mut self, id: &str) -> Result<EndpointView, Error> {
        self.post(&paths::endpoint_action(id, "resume")).await
    }

    /// `DELETE /v1/endpoints/{id}` (`?force=true`: waiting events become dead letters).
    pub async fn delete_endpoint(&mut self, id: &str, force: bool) -> Result<(), Error> {
        self.delete(&paths::remove_endpoint(id, force)).await
    }

    /// `GET /v1/endpoints/{id}/attempts?limit=N`, newest first.
    pub async fn attempts(&mut self, id: &str, limit: u32) -> Result<AttemptList, Error> {
        self.get(&paths::attempts(id, limit)).await
    }

    // ---- events

    /// `POST /v1/endpoints/{id}/events`: the payload is delivered byte for byte.
    pub async fn send_event(
        &mut self,
        endpoint: &str,
        payload: Bytes,
        opts: EventOptions<'_>,
    ) -> Result<Accepted, Error> {
        let mut headers = Vec::with_capacity(3);
        let named = [
            (CONTENT_TYPE, opts.content_type),
            (X_EVENT_TYPE, opts.event_type),
            (IDEMPOTENCY_KEY, opts.idempotency_key),
        ];
        for (name, value) in named {
            if let Some(v) = value {
                let v = HeaderValue::from_str(v).map_err(|_| {
                    Error::Invalid(format!(
                        "invalid {name} {v:?}: must be visible ASCII without line breaks"
                    ))
                })?;
                headers.push((name, v));
            }
        }
        let path = paths::endpoint_action(endpoint, "events");
        Ok(self.json(Method::POST, &path, &headers, payload).await?.1)
    }

    /// `POST /v1/events/batch` with NDJSON lines `{"endpoint", "body", ...}`.
    pub async fn send_batch(&mut self, ndjson: Bytes) -> Result<BatchAccepted, Error> {
        let headers = [(CONTENT_TYPE, NDJSON)];
        Ok(self
            .json(Method::POST, paths::BATCH, &headers, ndjson)
            .await?
            .1)
    }

    // ---- dead letters

    /// `GET /v1/dead-letters[?endpoint=ID]`, oldest first.
    pub async fn dead_letters(&mut self, endpoint: Option<&str>) -> Result<DeadLetterList, Error> {
        self.get(&paths::dead_letters(endpoint)).await
    }

    /// `GET /v1/dead-letters/{event_id}`.
    pub async fn dead_letter(&mut self, event_id: &str) -> Result<DeadLetterDetail, Error> {
        self.get(&paths::dead_letter(event_id)).await
    }

    /// `POST /v1/dead-letters/{event_id}/replay`.
    pub async fn replay_dead_letter(&mut self, event_id: &str) -> Result<Replayed, Error> {
        self.post(&format!("{}/replay", paths::dead_letter(event_id)))
            .await
    }

    /// `DELETE /v1/dead-letters/{event_id}`.
    pub async fn purge_dead_letter(&mut self, event_id: &str) -> Result<(), Error> {
        self.delete(&paths::dead_letter(event_id)).await
    }

    // ---- channels

    /// `PUT /v1/channels/{id}`: create or update.
    pub async fn put_channel(
        &mut self,
        id: &str,
        update: &ChannelUpdate,
    ) -> Result<Saved<ChannelView>, Error> {
        self.put(&paths::channel(id), update).await
    }

    /// `GET /v1/channels`.
    pub async fn channels(&mut self) -> Result<ChannelList, Error> {
        self.get(paths::CHANNELS).await
    }

    /// `GET /v1/channels/{id}`.
    pub async fn channel(&mut self, id: &str) -> Result<ChannelView, Error> {
        self.get(&paths::channel(id)).await
    }

    /// `DELETE /v1/channels/{id}`.
    pub async fn delete_channel(&mut self, id: &str) -> Result<(), Error> {
        self.delete(&paths::channel(id)).await
    }

    // ---- process

    /// `GET /livez`: whether the process answers.
    pub async fn livez(&mut self) -> Result<bool, Error> {
        let a = self.call(Method::GET, "/livez", &[], Bytes::new()).await?;
        Ok(a.status == StatusCode::OK)
    }

    /// `GET /readyz`: `false` while the daemon is stopping (503).
    pub async fn readyz(&mut self) -> Result<bool, Error> {
        let a = self.call(Method::GET, "/readyz", &[], Bytes::new()).await?;
        match a.status {
            StatusCode::OK => Ok(true),
            StatusCode::SERVICE_UNAVAILABLE => Ok(false),
            status => Err(Error::Api(ApiError::new(status, a.body))),
        }
    }

    /// `GET /metrics`: the Prometheus text.
    pub async fn metrics(&mut self) -> Result<String, Error> {
        let a = self
            .checked(Method::GET, "/metrics", &[], Bytes::new())
            .await?;
        Ok(String::from_utf8_lossy(&a.body).into_owned())
    }
    // ---- connect and test

    /// `POST /v1/endpoints/{id}/test`: one signed `webhook.ping` now.
    pub async fn test_endpoint(&mut self, id: &str) -> Result<TestResult, Error> {
        self.post(&paths::endpoint_action(id, "test")).await
    }

    /// `POST /v1/endpoints/{id}/call`: `body` sent now (with its `Content-Type`); the
    /// receiver's answer.
    pub async fn call_endpoint(
        &mut self,
        id: &str,
        body: Bytes,
        content_type: Option<&str>,
    ) -> Result<CallResult, Error> {
        let mut headers = Vec::with_capacity(1);
        if let Some(ct) = content_type {
            let v = HeaderValue::from_str(ct).map_err(|_| {
                Error::Invalid(format!(
                    "invalid content-type {ct:?}: must be visible ASCII without line breaks"
                ))
            })?;
            headers.push((CONTENT_TYPE, v));
        }
        let path = paths::endpoint_action(id, "call");
        Ok(self.json(Method::POST, &path, &headers, body).await?.1)
    }

    /// `POST /v1/endpoints/{id}/retry`: attempt now what waits (probe or retries).
    pub async fn retry_endpoint(&mut self, id: &str) -> Result<RetryResult, Error> {
        self.post(&paths::endpoint_action(id, "retry")).await
    }

    // ---- dead letters in bulk

    /// `GET /v1/dead-letters?…`: one page of the dead letters `filter` selects (its `limit` and
    /// `cursor` fields are not used here: a page's are the arguments).
    pub async fn dead_letter_page(
        &mut self,
        filter: &DeadLetterFilter,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<DeadLetterList, Error> {
        self.get(&paths::dead_letters_filtered("", filter, limit, cursor))
            .await
    }

    /// Every dead letter `filter` selects, walking the pages (1000 a page).
    pub async fn all_dead_letters(
        &mut self,
        filter: &DeadLetterFilter,
    ) -> Result<DeadLetterList, Error> {
        let mut all = DeadLetterList {
            dead_letters: Vec::new(),
            next_cursor: None,
        };
        let mut cursor: Option<String> = None;
        loop {
            let page = self
                .dead_letter_page(filter, Some(1000), cursor.as_deref())
                .await?;
            all.dead_letters.extend(page.dead_letters);
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(all),
            }
        }
    }

    /// `GET /v1/dead-letters/count?…`.
    pub async fn count_dead_letters(&mut self, filter: &DeadLetterFilter) -> Result<u64, Error> {
        let c: DeadLetterCount = self
            .get(&paths::dead_letters_filtered("/count", filter, None, None))
            .await?;
        Ok(c.count)
    }

    /// `POST /v1/dead-letters/replay` with the filter (and its `limit`/`cursor`) as the body.
    pub async fn replay_dead_letters(
        &mut self,
        filter: &DeadLetterFilter,
    ) -> Result<BulkReplayed, Error> {
        let body = serde_json::to_vec(filter).map_err(|e| Error::Invalid(e.to_string()))?;
        let headers = [(CONTENT_TYPE, JSON)];
        let path = "/v1/dead-letters/replay";
        Ok(self
            .json(Method::POST, path, &headers, Bytes::from(body))
            .await?
            .1)
    }

    /// `DELETE /v1/dead-letters?…`: answers how many were purged.
    pub async fn purge_dead_letters(&mut self, filter: &DeadLetterFilter) -> Result<u64, Error> {
        let path = paths::dead_letters_filtered("", filter, None, None);
        let p: Purged = self.json(Method::DELETE, &path, &[], Bytes::new()).await?.1;
        Ok(p.purged)
    }

    /// `GET /v1/dead-letters/export?…`: hands the NDJSON to `sink` as it arrives.
    pub async fn export_dead_letters(
        &mut self,
        filter: &DeadLetterFilter,
        sink: impl FnMut(&[u8]) -> Result<(), String>,
    ) -> Result<(), Error> {
        let path = paths::dead_letters_filtered("/export", filter, None, None);
        match self
            .call_streaming(Method::GET, &path, Bytes::new(), sink)
            .await?
        {
            None => Ok(()),
            Some(a) => Err(Error::Api(ApiError::new(a.status, a.body))),
        }
    }

    /// `GET /v1/status`: the daemon on one screen.
    pub async fn status(&mut self) -> Result<StatusView, Error> {
        self.get("/v1/status").await
    }

    // ---- back-fill from the retained log

    /// `POST /v1/endpoints/{id}/replay` with the window (and its `limit`/`cursor`) as the body.
    pub async fn backfill(
        &mut self,
        id: &str,
        window: &BackfillRequest,
    ) -> Result<Backfilled, Error> {
        let body = serde_json::to_vec(window).map_err(|e| Error::Invalid(e.to_string()))?;
        let headers = [(CONTENT_TYPE, JSON)];
        let path = paths::endpoint_action(id, "replay");
        Ok(self
            .json(Method::POST, &path, &headers, Bytes::from(body))
            .await?
            .1)
    }
}
