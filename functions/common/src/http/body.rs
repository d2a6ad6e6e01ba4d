//! JSON request bodies: content type, size limit, and the 400/422 split (syntax vs shape).

use http::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;
use serde_json::error::Category;

use super::MAX_BODY_BYTES;
use super::routing::Call;
use crate::error::ServiceError;

/// Whether a `content-type` value is JSON (`application/json`, any parameters, any case).
fn is_json(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

/// Decodes the body of `call` as `T`: 415 without a JSON content type, 413 over
/// [`MAX_BODY_BYTES`], 400 when it is not JSON, 422 when it is JSON of the wrong shape.
pub fn json<T: DeserializeOwned, Op>(call: &Call<Op>) -> Result<T, ServiceError> {
    let json_content = call
        .request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(is_json);
    if !json_content {
        return Err(ServiceError::UnsupportedMediaType);
    }
    let bytes = call.body();
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ServiceError::PayloadTooLarge {
            limit: MAX_BODY_BYTES,
        });
    }
    serde_json::from_slice(bytes).map_err(|error| match error.classify() {
        Category::Data => ServiceError::InvalidBody(error.to_string()),
        Category::Syntax | Category::Eof | Category::Io => {
            ServiceError::MalformedJson(error.to_string())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_media_types() {
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(!is_json("text/plain"));
        assert!(!is_json("application/jsonp"));
        assert!(!is_json(""));
    }
}
