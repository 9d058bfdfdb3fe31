//! The Jenkins REST client: trigger a job, follow its queue item until it
//! becomes a build, follow the build until it ends, read the end of its log,
//! stop it. Plain `reqwest`; the tests point it at a fake Jenkins that speaks
//! the same wire protocol (`tests/it/fake_jenkins.rs`).
//!
//! What Jenkins does that callers should know:
//!
//! - a trigger answers `201 Created` with `Location: BASE/queue/item/ID/`: the
//!   build number is known only once the queue item has left the queue, and
//!   Jenkins forgets queue items a few minutes after that;
//! - POSTs need a CSRF crumb when CSRF protection is on; the crumb belongs to
//!   the web session it was issued in, so the session cookie is sent with it;
//! - a trigger that times out may still have queued the build (the answer was
//!   lost, not necessarily the request);
//! - a trigger identical to one still waiting in the queue (same job, same
//!   parameters) is merged into it by Jenkins: the same queue item comes back.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue, COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use tracing::debug;

/// How many idle connections to Jenkins are kept for reuse.
pub const MAX_IDLE_CONNECTIONS: usize = 16;

/// Where Jenkins is and who the bot is there.
#[derive(Clone)]
pub struct JenkinsSettings {
    /// The root URL, such as `https://ci.example.com` or `https://example.com/jenkins`.
    pub base_url: String,
    pub user: String,
    /// The user's API token; without one, requests go anonymously.
    pub token: Option<String>,
    /// For each request, from connecting to the last byte of the answer.
    pub timeout: Duration,
}

impl fmt::Debug for JenkinsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JenkinsSettings")
            .field("base_url", &self.base_url)
            .field("user", &self.user)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// What went wrong talking to Jenkins; callers branch on the kind (retry a
/// transient error, report the others).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JenkinsError {
    #[error(
        "Jenkins refused the credentials (401): check [ci.jenkins] user and the token env var"
    )]
    Unauthorized,
    #[error("Jenkins refused the request (403): the [ci.jenkins] user lacks a permission for it, or no API token was sent (is the token env var set?)")]
    Forbidden,
    /// What was not found: "job `web/build`", "build #12 of `web/build`", ….
    #[error("Jenkins has no {0} (404)")]
    NotFound(String),
    #[error("Jenkins failed with HTTP {0} (a problem on Jenkins' side); try again later")]
    Server(u16),
    #[error("Jenkins did not answer in time (see [ci.jenkins] timeout)")]
    Timeout,
    /// Where and why: "http://ci:8080: tcp connect error: Connection refused".
    #[error("cannot reach Jenkins at {0}")]
    Unreachable(String),
    #[error("Jenkins answered something unexpected: {0}")]
    Protocol(String),
    /// The settings or a job name cannot be used (a mistake in the configuration).
    #[error("{0}")]
    Config(String),
}

impl JenkinsError {
    /// Whether trying again later may work: Jenkins is down, slow or failing.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            JenkinsError::Server(_) | JenkinsError::Timeout | JenkinsError::Unreachable(_)
        )
    }
}

/// How a build ended, as Jenkins says it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, strum::Display, strum::IntoStaticStr, strum::EnumString,
)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum BuildResult {
    Success,
    Failure,
    Unstable,
    Aborted,
    NotBuilt,
}

impl BuildResult {
    /// Jenkins' word for it: `SUCCESS`, `FAILURE`, `UNSTABLE`, `ABORTED`, `NOT_BUILT`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(s: &str) -> Option<BuildResult> {
        s.parse().ok()
    }
}

/// Where a triggered build is before it has a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueState {
    /// Still in the queue; `why` is Jenkins' reason ("Waiting for next available executor").
    Waiting { why: Option<String> },
    /// Left the queue as build `number`, at `url`.
    Started { number: u64, url: String },
    /// Cancelled in the queue: no build will come of it.
    Cancelled,
}

/// A build as Jenkins reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Build {
    pub number: u64,
    pub building: bool,
    /// Set when the build has ended (a Pipeline may set it earlier).
    pub result: Option<BuildResult>,
    /// 0 while building.
    pub duration_ms: u64,
    /// Jenkins' estimate from earlier builds; 0 when it has none.
    pub estimated_ms: u64,
    pub url: String,
}

/// A client of one Jenkins. Cheap to clone; clones share the CSRF crumb.
#[derive(Clone)]
pub struct JenkinsClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// Without the trailing `/`.
    base: String,
    user: String,
    token: Option<String>,
    crumb: Mutex<Crumb>,
}

impl fmt::Debug for JenkinsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JenkinsClient")
            .field("base", &self.inner.base)
            .field("user", &self.inner.user)
            .finish_non_exhaustive()
    }
}

/// What is known of Jenkins' CSRF protection.
#[derive(Clone)]
enum Crumb {
    /// Not asked yet (or the crumb was refused).
    Unknown,
    /// `crumbIssuer` answered 404: CSRF protection is off.
    Off,
    /// The header to send on POSTs, and the session cookie the crumb belongs to.
    On {
        field: HeaderName,
        value: HeaderValue,
        cookie: Option<HeaderValue>,
    },
}

/// What a request is about, for error messages.
enum What<'a> {
    Job(&'a str),
    Build(&'a str, u64),
    Queue(u64),
    Crumb,
}

impl fmt::Display for What<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            What::Job(j) => write!(f, "job `{j}`"),
            What::Build(j, n) => write!(f, "build #{n} of `{j}`"),
            What::Queue(id) => write!(
                f,
                "queue item {id} (Jenkins forgets queue items a few minutes after they leave the queue)"
            ),
            What::Crumb => f.write_str("crumb issuer"),
        }
    }
}

#[derive(Deserialize)]
struct RawCrumb {
    crumb: String,
    #[serde(rename = "crumbRequestField")]
    crumb_request_field: String,
}

#[derive(Deserialize)]
struct RawQueueItem {
    #[serde(default)]
    why: Option<String>,
    #[serde(default)]
    cancelled: Option<bool>,
    #[serde(default)]
    executable: Option<RawExecutable>,
}

#[derive(Deserialize)]
struct RawExecutable {
    number: u64,
    #[serde(default)]
    url: String,
}

#[derive(Deserialize)]
struct RawBuild {
    number: u64,
    building: bool,
    result: Option<String>,
    #[serde(default)]
    duration: i64,
    #[serde(rename = "estimatedDuration", default)]
    estimated_duration: i64,
    #[serde(default)]
    url: String,
}

/// The fields of a build the client reads (Jenkins' full answer lists every
/// action and change set).
const BUILD_TREE: &str = "number,building,result,duration,estimatedDuration,url";

impl JenkinsClient {
    pub fn new(s: JenkinsSettings) -> Result<JenkinsClient, JenkinsError> {
        let base = s.base_url.trim().trim_end_matches('/').to_string();
        let url = reqwest::Url::parse(&base).map_err(|e| {
            JenkinsError::Config(format!(
                "[ci.jenkins] url `{base}` is not a URL ({e}); write it as https://ci.example.com"
            ))
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(JenkinsError::Config(format!(
                "[ci.jenkins] url `{base}` is not an http(s) URL; write it as https://ci.example.com"
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(JenkinsError::Config(
                "[ci.jenkins] url must not hold credentials: set `user` and put the token in the token env var".into(),
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(JenkinsError::Config(format!(
                "[ci.jenkins] url `{base}` must not have a query or a fragment"
            )));
        }
        if s.timeout.is_zero() {
            return Err(JenkinsError::Config(
                "[ci.jenkins] timeout must be more than 0".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(s.timeout)
            .connect_timeout(s.timeout)
            // A redirect is a wrong base URL (http → https, a missing path
            // prefix), and following one would turn a POST into a GET.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("opsbot/", env!("CARGO_PKG_VERSION")))
            // Many runs followed at once need few sockets kept open.
            .pool_max_idle_per_host(MAX_IDLE_CONNECTIONS)
            .build()
            .map_err(|e| JenkinsError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(JenkinsClient {
            inner: Arc::new(Inner {
                http,
                base,
                user: s.user,
                token: s.token.filter(|t| !t.is_empty()),
                crumb: Mutex::new(Crumb::Unknown),
            }),
        })
    }

    /// The root URL, without the trailing `/`.
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    /// Queues a build of `job` (`folder/name`) with `params` (none: a plain
    /// `/build`); the queue item's id.
    pub async fn trigger(
        &self,
        job: &str,
        params: &[(String, String)],
    ) -> Result<u64, JenkinsError> {
        let path = job_path(job)?;
        let url = if params.is_empty() {
            format!("{}/{path}/build", self.inner.base)
        } else {
            format!(
                "{}/{path}/buildWithParameters?{}",
                self.inner.base,
                query(params)
            )
        };
        let what = What::Job(job);
        let resp = self.post(&url, &what).await?;
        let status = resp.status();
        if status.is_server_error() && !params.is_empty() {
            // Jenkins fails with a 500 when a job without parameters is given
            // some: not worth retrying.
            let err = status_error(status, &resp, &what);
            let body = resp.text().await.unwrap_or_default();
            if body.contains("not parameterized") {
                let names: Vec<&str> = params.iter().map(|(k, _)| k.as_str()).collect();
                return Err(JenkinsError::Config(format!(
                    "the Jenkins job `{job}` takes no parameters, and the bot sends {}: make it parameterized in Jenkins (\"This project is parameterized\") with these parameters",
                    names.join(", ")
                )));
            }
            return Err(err);
        }
        if !status.is_success() {
            return Err(status_error(status, &resp, &what));
        }
        let location = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        queue_id_from_location(location).ok_or_else(|| {
            JenkinsError::Protocol(format!(
                "the trigger of job `{job}` answered {status} with no queue item (Location: `{location}`)"
            ))
        })
    }

    /// Where queue item `id` is: waiting, started as a build, or cancelled.
    pub async fn queue_item(&self, id: u64) -> Result<QueueState, JenkinsError> {
        let url = format!("{}/queue/item/{id}/api/json", self.inner.base);
        let raw: RawQueueItem = self.get_json(&url, &What::Queue(id)).await?;
        Ok(match raw {
            RawQueueItem {
                executable: Some(e),
                ..
            } => QueueState::Started {
                number: e.number,
                url: e.url,
            },
            RawQueueItem {
                cancelled: Some(true),
                ..
            } => QueueState::Cancelled,
            RawQueueItem { why, .. } => QueueState::Waiting { why },
        })
    }

    /// Build `number` of `job`.
    pub async fn build(&self, job: &str, number: u64) -> Result<Build, JenkinsError> {
        let url = format!(
            "{}/{}/{number}/api/json?tree={BUILD_TREE}",
            self.inner.base,
            job_path(job)?
        );
        let what = What::Build(job, number);
        let raw: RawBuild = self.get_json(&url, &what).await?;
        let result = match raw.result.as_deref() {
            None => None,
            Some(r) => Some(BuildResult::parse(r).ok_or_else(|| {
                JenkinsError::Protocol(format!(
                    "{what} has the result `{r}`, which is not a Jenkins result"
                ))
            })?),
        };
        Ok(Build {
            number: raw.number,
            building: raw.building,
            result,
            duration_ms: u64::try_from(raw.duration).unwrap_or(0),
            estimated_ms: u64::try_from(raw.estimated_duration).unwrap_or(0),
            url: raw.url,
        })
    }

    /// The end of build `number`'s log: at most `max_bytes` bytes, cut at a
    /// character boundary and, when the cut falls inside a line, at the start
    /// of the next line. Only the tail is kept while reading.
    pub async fn console_tail(
        &self,
        job: &str,
        number: u64,
        max_bytes: usize,
    ) -> Result<String, JenkinsError> {
        let url = format!(
            "{}/{}/{number}/consoleText",
            self.inner.base,
            job_path(job)?
        );
        let what = What::Build(job, number);
        let mut resp = self.send(Method::GET, &url, &what).await?;
        if !resp.status().is_success() {
            return Err(status_error(resp.status(), &resp, &what));
        }
        // The tail plus the bytes needed to see where it starts: the rest of
        // a cut character and the byte before it.
        let keep = max_bytes.saturating_add(4);
        let mut buf: Vec<u8> = Vec::new();
        let mut cut = false;
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.net_error(e))? {
            buf.extend_from_slice(&chunk);
            if buf.len() > keep.saturating_mul(2) {
                buf.drain(..buf.len() - keep);
                cut = true;
            }
        }
        if buf.len() > keep {
            buf.drain(..buf.len() - keep);
            cut = true;
        }
        if cut {
            // Start at a character boundary: skip UTF-8 continuation bytes.
            let skip = buf
                .iter()
                .take(3)
                .take_while(|b| (**b & 0xC0) == 0x80)
                .count();
            buf.drain(..skip);
        }
        let text = String::from_utf8_lossy(&buf);
        Ok(tail(&text, max_bytes).to_string())
    }

    /// Aborts build `number` of `job` (nothing happens if it has ended).
    pub async fn stop(&self, job: &str, number: u64) -> Result<(), JenkinsError> {
        let url = format!("{}/{}/{number}/stop", self.inner.base, job_path(job)?);
        let what = What::Build(job, number);
        let resp = self.post(&url, &what).await?;
        // Jenkins answers a stop with a redirect to the build's page.
        if resp.status().is_success() || resp.status().is_redirection() {
            return Ok(());
        }
        Err(status_error(resp.status(), &resp, &what))
    }

    /// Cancels queue item `id` while it waits (stopping a build needs its
    /// number; before it has one, this is how a triggered build is called off).
    pub async fn cancel_queue(&self, id: u64) -> Result<(), JenkinsError> {
        let url = format!("{}/queue/cancelItem?id={id}", self.inner.base);
        let what = What::Queue(id);
        let resp = self.post(&url, &what).await?;
        if resp.status().is_success() || resp.status().is_redirection() {
            return Ok(());
        }
        Err(status_error(resp.status(), &resp, &what))
    }

    /// The error for a request that got no (whole) answer.
    fn net_error(&self, e: reqwest::Error) -> JenkinsError {
        if e.is_timeout() {
            return JenkinsError::Timeout;
        }
        if e.is_decode() {
            return JenkinsError::Protocol(error_chain(&e));
        }
        JenkinsError::Unreachable(format!("{}: {}", self.inner.base, error_chain(&e)))
    }

    fn request(&self, method: Method, url: &str) -> reqwest::RequestBuilder {
        let req = self.inner.http.request(method, url);
        match &self.inner.token {
            Some(token) => req.basic_auth(&self.inner.user, Some(token)),
            None => req,
        }
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        what: &What<'_>,
    ) -> Result<reqwest::Response, JenkinsError> {
        debug!(%method, url, "jenkins request");
        let resp = self
            .request(method, url)
            .send()
            .await
            .map_err(|e| self.net_error(e))?;
        debug!(url, status = resp.status().as_u16(), %what, "jenkins answer");
        Ok(resp)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        what: &What<'_>,
    ) -> Result<T, JenkinsError> {
        let resp = self.send(Method::GET, url, what).await?;
        if !resp.status().is_success() {
            return Err(status_error(resp.status(), &resp, what));
        }
        let body = resp.bytes().await.map_err(|e| self.net_error(e))?;
        serde_json::from_slice(&body).map_err(|e| {
            JenkinsError::Protocol(format!(
                "the answer about {what} is not the JSON expected: {e}"
            ))
        })
    }

    /// A POST with the CSRF crumb; a refused crumb is fetched again, once.
    /// The answer may be any status but 403.
    async fn post(&self, url: &str, what: &What<'_>) -> Result<reqwest::Response, JenkinsError> {
        let mut fresh = false;
        loop {
            let crumb = self.crumb(fresh).await?;
            let mut req = self.request(Method::POST, url);
            if let Crumb::On {
                field,
                value,
                cookie,
            } = &crumb
            {
                req = req.header(field.clone(), value.clone());
                if let Some(c) = cookie {
                    req = req.header(COOKIE, c.clone());
                }
            }
            debug!(
                url,
                crumb = matches!(crumb, Crumb::On { .. }),
                "jenkins POST"
            );
            let resp = req.send().await.map_err(|e| self.net_error(e))?;
            debug!(url, status = resp.status().as_u16(), %what, "jenkins answer");
            if resp.status() != StatusCode::FORBIDDEN {
                return Ok(resp);
            }
            let body = resp.text().await.unwrap_or_default();
            if !fresh && body.to_ascii_lowercase().contains("crumb") {
                debug!(url, "Jenkins refused the crumb; fetching a new one");
                *self.crumb_state() = Crumb::Unknown;
                fresh = true;
                continue;
            }
            return Err(JenkinsError::Forbidden);
        }
    }

    fn crumb_state(&self) -> MutexGuard<'_, Crumb> {
        match self.inner.crumb.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// The crumb to send, from the cache unless `fresh` or unknown.
    async fn crumb(&self, fresh: bool) -> Result<Crumb, JenkinsError> {
        if !fresh {
            let known = self.crumb_state().clone();
            if !matches!(known, Crumb::Unknown) {
                return Ok(known);
            }
        }
        let url = format!("{}/crumbIssuer/api/json", self.inner.base);
        let resp = self.send(Method::GET, &url, &What::Crumb).await?;
        let crumb = if resp.status() == StatusCode::NOT_FOUND {
            Crumb::Off
        } else if !resp.status().is_success() {
            return Err(status_error(resp.status(), &resp, &What::Crumb));
        } else {
            let cookie = session_cookie(resp.headers().get_all(SET_COOKIE).iter());
            let body = resp.bytes().await.map_err(|e| self.net_error(e))?;
            let raw: RawCrumb = serde_json::from_slice(&body).map_err(|e| {
                JenkinsError::Protocol(format!(
                    "the crumb issuer's answer is not the JSON expected: {e}"
                ))
            })?;
            let field =
                HeaderName::from_bytes(raw.crumb_request_field.as_bytes()).map_err(|_| {
                    JenkinsError::Protocol(format!(
                        "the crumb field `{}` is not a header name",
                        raw.crumb_request_field
                    ))
                })?;
            let mut value = HeaderValue::from_str(&raw.crumb)
                .map_err(|_| JenkinsError::Protocol("the crumb is not a header value".into()))?;
            value.set_sensitive(true);
            Crumb::On {
                field,
                value,
                cookie,
            }
        };
        *self.crumb_state() = crumb.clone();
        Ok(crumb)
    }
}

/// The error for an answer that is not a success.
fn status_error(status: StatusCode, resp: &reqwest::Response, what: &What<'_>) -> JenkinsError {
    match status.as_u16() {
        401 => JenkinsError::Unauthorized,
        403 => JenkinsError::Forbidden,
        404 => JenkinsError::NotFound(what.to_string()),
        429 | 500..=599 => JenkinsError::Server(status.as_u16()),
        300..=399 => {
            let to = resp
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("?");
            JenkinsError::Protocol(format!(
                "the request about {what} was redirected ({status}) to {to}: is [ci.jenkins] url the address Jenkins uses (http or https, path prefix)?"
            ))
        }
        _ => JenkinsError::Protocol(format!("HTTP {status} to the request about {what}")),
    }
}

/// The causes of an error, one after the other, without the request's URL
/// and hyper's wrappers ("tcp connect error: Connection refused (os error 111)").
fn error_chain(e: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !text.starts_with("client error (") && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    if parts.is_empty() {
        return e.to_string();
    }
    parts.join(": ")
}

/// The `name=value` pairs of the `Set-Cookie` headers, as one `Cookie` header.
fn session_cookie<'a>(headers: impl Iterator<Item = &'a HeaderValue>) -> Option<HeaderValue> {
    let pairs: Vec<&str> = headers
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .map(str::trim)
        .filter(|p| p.contains('='))
        .collect();
    if pairs.is_empty() {
        return None;
    }
    let mut v = HeaderValue::from_str(&pairs.join("; ")).ok()?;
    v.set_sensitive(true);
    Some(v)
}

/// The URL path of a job from its full name: `folder/name` → `job/folder/job/name`,
/// each name percent-encoded.
pub fn job_path(job: &str) -> Result<String, JenkinsError> {
    let bad = |why: &str| {
        JenkinsError::Config(format!(
            "the Jenkins job name `{job}` {why}; write a job as its full name, folders with `/`, such as `web/build`"
        ))
    };
    if job.is_empty() {
        return Err(bad("is empty"));
    }
    let mut path = String::new();
    for name in job.split('/') {
        if name.is_empty() {
            return Err(bad("has an empty part"));
        }
        // A URL parser would resolve these, even percent-encoded.
        if name == "." || name == ".." {
            return Err(bad("has a `.` or `..` part"));
        }
        if !path.is_empty() {
            path.push('/');
        }
        path.push_str("job/");
        path.push_str(&percent_encode(name));
    }
    Ok(path)
}

/// Every byte but the unreserved ones (`A-Z a-z 0-9 - . _ ~`) as `%XX`: safe
/// in a path segment and in a query's names and values.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `K=V&K=V`, names and values percent-encoded.
fn query(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The queue item's id from a trigger's `Location` (`BASE/queue/item/ID/`).
pub fn queue_id_from_location(location: &str) -> Option<u64> {
    let (_, rest) = location.rsplit_once("/queue/item/")?;
    let digits = rest.strip_suffix('/').unwrap_or(rest);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The last `max_bytes` bytes of `text` at most, starting at a character
/// boundary, and at a line start when the cut falls inside a line that is not
/// the last one.
pub fn tail(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut start = text.len() - max_bytes;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    if start > 0 && text.as_bytes()[start - 1] != b'\n' {
        if let Some(i) = text[start..].find('\n') {
            if start + i + 1 < text.len() {
                start += i + 1;
            }
        }
    }
    &text[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_names_become_paths() {
        let cases: &[(&str, &str)] = &[
            ("build-web", "job/build-web"),
            ("web/build", "job/web/job/build"),
            ("a/b/c", "job/a/job/b/job/c"),
            ("my job", "job/my%20job"),
            ("team a/deploy #1", "job/team%20a/job/deploy%20%231"),
            ("x?y=1&z", "job/x%3Fy%3D1%26z"),
            ("é", "job/%C3%A9"),
            ("v1.2_beta~x", "job/v1.2_beta~x"),
            ("100%", "job/100%25"),
        ];
        for (name, want) in cases {
            assert_eq!(job_path(name).unwrap(), *want, "{name}");
        }
    }

    #[test]
    fn bad_job_names_are_refused() {
        for name in ["", "/a", "a/", "a//b", "..", "a/../b", "./a"] {
            let e = job_path(name).unwrap_err();
            assert!(matches!(e, JenkinsError::Config(_)), "{name}: {e:?}");
            assert!(!e.is_transient());
        }
    }

    #[test]
    fn queries_encode_what_would_break_them() {
        let p = vec![
            ("REF".to_string(), "release/1.2".to_string()),
            ("MSG".to_string(), "a b;c&d=e+f\n$(x)#".to_string()),
        ];
        assert_eq!(
            query(&p),
            "REF=release%2F1.2&MSG=a%20b%3Bc%26d%3De%2Bf%0A%24%28x%29%23"
        );
    }

    #[test]
    fn queue_ids_come_from_the_location() {
        let ok: &[(&str, u64)] = &[
            ("http://j:8080/queue/item/42/", 42),
            ("http://j:8080/queue/item/42", 42),
            ("https://ci.example.com/jenkins/queue/item/7/", 7),
            ("/queue/item/123/", 123),
        ];
        for (loc, id) in ok {
            assert_eq!(queue_id_from_location(loc), Some(*id), "{loc}");
        }
        for loc in [
            "",
            "http://j/queue/item/",
            "http://j/queue/item/x/",
            "http://j/job/a/1/",
            "http://j/queue/item/1/api/json",
            "http://j/queue/item/-1/",
        ] {
            assert_eq!(queue_id_from_location(loc), None, "{loc}");
        }
    }

    #[test]
    fn tails_start_at_a_line_and_a_character() {
        assert_eq!(tail("short\n", 100), "short\n");
        assert_eq!(tail("", 0), "");
        // Cut inside a line: the next line starts the tail.
        assert_eq!(tail("line one\nline two\nend\n", 12), "end\n");
        // Cut at a line start: kept as is.
        assert_eq!(tail("aaaa\nbbbb\n", 5), "bbbb\n");
        // One long last line: its end, rather than nothing.
        assert_eq!(tail("xxxxxxxxxx", 4), "xxxx");
        assert_eq!(tail("a\nxxxxxxxxxx\n", 4), "xxx\n");
        // Never inside a character.
        let t = tail("ééééé", 3);
        assert_eq!(t, "é");
        let t = tail("abc✓✓", 4);
        assert_eq!(t, "✓");
        for n in 0..20 {
            let s = "ab\nc✓d\né\n✓✓✓ x\n";
            let t = tail(s, n);
            assert!(t.len() <= n, "{n}: {t:?}");
            assert!(s.ends_with(t));
        }
    }

    #[test]
    fn results_are_jenkins_words() {
        for r in [
            BuildResult::Success,
            BuildResult::Failure,
            BuildResult::Unstable,
            BuildResult::Aborted,
            BuildResult::NotBuilt,
        ] {
            assert_eq!(BuildResult::parse(r.as_str()), Some(r));
            assert_eq!(r.to_string(), r.as_str());
        }
        assert_eq!(BuildResult::parse("success"), None);
    }

    #[test]
    fn transient_errors_are_the_ones_worth_retrying() {
        assert!(JenkinsError::Server(500).is_transient());
        assert!(JenkinsError::Server(503).is_transient());
        assert!(JenkinsError::Timeout.is_transient());
        assert!(JenkinsError::Unreachable("refused".into()).is_transient());
        for e in [
            JenkinsError::Unauthorized,
            JenkinsError::Forbidden,
            JenkinsError::NotFound("job `x`".into()),
            JenkinsError::Protocol("?".into()),
            JenkinsError::Config("?".into()),
        ] {
            assert!(!e.is_transient(), "{e:?}");
        }
        assert_eq!(
            JenkinsError::Unauthorized.to_string(),
            "Jenkins refused the credentials (401): check [ci.jenkins] user and the token env var"
        );
        assert_eq!(
            JenkinsError::NotFound("job `web/build`".into()).to_string(),
            "Jenkins has no job `web/build` (404)"
        );
    }

    fn settings(url: &str) -> JenkinsSettings {
        JenkinsSettings {
            base_url: url.into(),
            user: "opsbot".into(),
            token: Some("s3cr3t-token".into()),
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn settings_are_checked_and_the_token_never_printed() {
        let c = JenkinsClient::new(settings("https://ci.example.com/jenkins/")).unwrap();
        assert_eq!(c.base_url(), "https://ci.example.com/jenkins");
        assert!(!format!("{c:?}").contains("s3cr3t"));
        assert!(!format!("{:?}", settings("http://j")).contains("s3cr3t"));
        for bad in [
            "ci.example.com",
            "ftp://ci.example.com",
            "https://opsbot:s3cr3t-token@ci.example.com",
            "https://ci.example.com/?x=1",
            "",
        ] {
            let e = JenkinsClient::new(settings(bad)).unwrap_err();
            assert!(matches!(e, JenkinsError::Config(_)), "{bad}: {e:?}");
            assert!(!e.to_string().contains("s3cr3t"), "{e}");
        }
        let mut s = settings("http://j");
        s.timeout = Duration::ZERO;
        assert!(JenkinsClient::new(s).is_err());
    }

    #[test]
    fn session_cookies_are_sent_back_without_their_attributes() {
        let a = HeaderValue::from_static("JSESSIONID.1a2b=node0abc; Path=/; HttpOnly");
        let b = HeaderValue::from_static("other=1; Secure");
        let c = session_cookie([&a, &b].into_iter()).unwrap();
        assert_eq!(c.to_str().unwrap(), "JSESSIONID.1a2b=node0abc; other=1");
        assert!(session_cookie(std::iter::empty()).is_none());
    }
}
