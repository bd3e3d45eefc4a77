//! The mock's JSON routes: which path gets a fixed JSON body (`responses`) and which an
//! OpenAI-shaped answer (`openai`), built once at start.
//!
//! In: a validated [`MockConfig`]. Out: [`Routes`], absent when neither key is set, so that the
//! default route costs one `None` check; each fixed body is serialized once into [`Bytes`] and
//! cloned (a reference count) per request. A `responses` entry for `/v1/embeddings` or
//! `/v1/chat/completions` overrides the OpenAI answer there. It does not answer: the handler
//! does, with `openai` for the OpenAI routes.

use bytes::Bytes;
use http::Method;

use super::config::MockConfig;
use super::openai::{Endpoint, OpenAi};

/// The JSON routes of one server.
pub(crate) struct Routes {
    /// `responses`: path and body, in the config's order (a handful: a scan beats a hash).
    fixed: Vec<(String, Bytes)>,
    /// `openai`, when on.
    openai: Option<OpenAi>,
}

/// Where a request on a JSON route goes.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Route {
    /// A fixed body from `responses`.
    Fixed(Bytes),
    /// An OpenAI endpoint (`POST` only).
    OpenAi(Endpoint),
}

impl Routes {
    /// The routes of a validated config; `None` without `responses` and `openai`.
    pub fn new(config: &MockConfig) -> Option<Routes> {
        if config.responses.is_empty() && !config.openai {
            return None;
        }
        let fixed = config
            .responses
            .iter()
            .map(|r| {
                let body = serde_json::to_vec(&r.json).unwrap_or_default();
                (r.path.clone(), Bytes::from(body))
            })
            .collect();
        Some(Routes {
            fixed,
            openai: config.openai.then(|| OpenAi::new(config)),
        })
    }

    /// The route of a request, if it is on one.
    pub fn route(&self, method: &Method, path: &str) -> Option<Route> {
        if let Some((_, body)) = self.fixed.iter().find(|(p, _)| p == path) {
            return Some(Route::Fixed(body.clone()));
        }
        match &self.openai {
            Some(_) if method == Method::POST => Endpoint::at(path).map(Route::OpenAi),
            _ => None,
        }
    }

    /// The OpenAI settings, when `openai` is on.
    pub fn openai(&self) -> Option<&OpenAi> {
        self.openai.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(text: &str) -> Option<Routes> {
        let c: MockConfig = toml::from_str(text).unwrap();
        c.validate().unwrap();
        Routes::new(&c)
    }

    #[test]
    fn the_default_mock_has_no_json_routes() {
        assert!(routes("").is_none());
        assert!(routes("stream = { tokens = 2, interval = \"1ms\" }").is_none());
    }

    #[test]
    fn a_fixed_body_is_serialized_once_for_its_path_and_any_method() {
        let r =
            routes(r#"responses = [{ path = "/v1/predict", json = { label = "cat" } }]"#).unwrap();
        let want = Some(Route::Fixed(Bytes::from_static(br#"{"label":"cat"}"#)));
        assert_eq!(r.route(&Method::POST, "/v1/predict"), want);
        assert_eq!(r.route(&Method::GET, "/v1/predict"), want);
        assert_eq!(r.route(&Method::POST, "/v1/predict/"), None);
        assert_eq!(
            r.route(&Method::POST, "/v1/embeddings"),
            None,
            "openai is off"
        );
        assert!(r.openai().is_none());
    }

    #[test]
    fn openai_routes_answer_posts_and_a_fixed_body_overrides_them() {
        let r = routes("openai = true").unwrap();
        assert_eq!(
            r.route(&Method::POST, "/v1/embeddings"),
            Some(Route::OpenAi(Endpoint::Embeddings))
        );
        assert_eq!(
            r.route(&Method::POST, "/v1/chat/completions"),
            Some(Route::OpenAi(Endpoint::ChatCompletions))
        );
        assert_eq!(r.route(&Method::GET, "/v1/embeddings"), None);
        assert_eq!(r.route(&Method::POST, "/"), None);
        let r = routes(
            "openai = true\nresponses = [{ path = \"/v1/embeddings\", json = { data = [] } }]",
        )
        .unwrap();
        assert!(matches!(
            r.route(&Method::POST, "/v1/embeddings"),
            Some(Route::Fixed(_))
        ));
    }
}
