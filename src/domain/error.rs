//! The user's errors: shown as written (the bot's own are `crate::error`).

/// A mistake of the person who asked: shown to them as written. It says what
/// was wrong and what would be right.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct UserError {
    message: String,
}

impl UserError {
    /// The message is cleaned of terminal escapes and bidi overrides: it
    /// often quotes what the user typed.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: crate::domain::sanitize::clean_untrusted(&message.into()),
        }
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}
