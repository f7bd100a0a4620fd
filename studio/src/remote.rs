//! Following a studio over HTTP: [`Remote`] reads its event stream frame by frame, as the
//! page does. `warden top` draws what it reads; [`Studio::follow`](crate::Studio::follow)
//! merges another process's studio into this one's view.

use std::time::Duration;

use thiserror::Error;

use crate::view::Frame;

/// Why following a studio failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RemoteError {
    /// The studio could not be reached, or its stream broke.
    #[error("studio unreachable: {0}")]
    Http(#[from] reqwest::Error),
    /// The studio refused the token.
    #[error("the studio refused the token")]
    Unauthorized,
    /// The studio answered something that is not a frame.
    #[error("the studio sent a frame that does not parse: {0}")]
    BadFrame(#[from] serde_json::Error),
    /// The URL is not a studio's.
    #[error("not a studio URL: {0}")]
    BadUrl(String),
    /// The stream ended (the studio stopped, or closed its viewers).
    #[error("the studio closed the stream")]
    Closed,
}

/// A studio followed over HTTP: its event stream, frame by frame.
pub struct Remote {
    response: reqwest::Response,
    buffer: String,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote").finish_non_exhaustive()
    }
}

/// Splits the URL a studio printed (`http://HOST:PORT/PATH/?token=T`) into its base
/// (`http://HOST:PORT/PATH/`) and its token, if it carries one.
pub fn split_url(url: &str) -> (String, Option<String>) {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let token = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
        .map(str::to_owned);
    let base = if base.ends_with('/') {
        base.to_owned()
    } else {
        format!("{base}/")
    };
    (base, token)
}

impl Remote {
    /// Connects to the studio at `url` (its page's address, as it printed it) with `token`
    /// (else the one in the URL).
    ///
    /// # Errors
    ///
    /// [`RemoteError::BadUrl`] without a token, [`RemoteError::Unauthorized`] for a wrong one,
    /// [`RemoteError::Http`] if it cannot be reached.
    pub async fn connect(url: &str, token: Option<&str>) -> Result<Self, RemoteError> {
        let (base, in_url) = split_url(url);
        let token = token
            .map(str::to_owned)
            .or(in_url)
            .ok_or_else(|| RemoteError::BadUrl(format!("{url} (no token: give one, or the URL the studio printed)")))?;
        let response = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()?
            .get(format!("{base}api/events"))
            .bearer_auth(token)
            .send()
            .await?;
        if response.status() == reqwest::StatusCode::UNAUTHORIZED {
            return Err(RemoteError::Unauthorized);
        }
        let response = response.error_for_status()?;
        Ok(Self {
            response,
            buffer: String::new(),
        })
    }

    /// The next frame.
    ///
    /// # Errors
    ///
    /// [`RemoteError::Closed`] when the stream ends, [`RemoteError::Http`] if it breaks,
    /// [`RemoteError::BadFrame`] for a frame that does not parse.
    pub async fn next(&mut self) -> Result<Frame, RemoteError> {
        loop {
            // One event ends with a blank line; its data is its `data:` lines.
            if let Some(end) = self.buffer.find("\n\n") {
                let event: String = self.buffer.drain(..end + 2).collect();
                let data: Vec<&str> = event
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(|d| d.strip_prefix(' ').unwrap_or(d))
                    .collect();
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                return Ok(serde_json::from_str(&data.join("\n"))?);
            }
            let chunk = self.response.chunk().await?.ok_or(RemoteError::Closed)?;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_base_and_token() {
        assert_eq!(
            split_url("http://127.0.0.1:5/?token=ab"),
            ("http://127.0.0.1:5/".into(), Some("ab".into()))
        );
        assert_eq!(split_url("http://h:1/studio"), ("http://h:1/studio/".into(), None));
    }
}
