//! Local token counting: the right encoding per model, OpenAI's chat-message rules ([`count_chat`]), and
//! documented approximations (flagged `exact: false`) for models without a public local tokenizer.
//!
//! ## Model → encoding
//! Provider prefixes (`openai/`, `azure/`, any `vendor/` path, `ft:` fine-tunes) are stripped; matching is
//! by prefix, so dated snapshots (`gpt-4o-2024-08-06`) resolve like their family.
//! - `o200k_base`, exact: `gpt-4o*` (incl. `gpt-4o-*-transcribe`), `chatgpt-4o*`, `gpt-4.1*`, `gpt-4.5*`,
//!   `gpt-5*`, `o1*`, `o3*`, `o4*`, `gpt-image-1*`, `gpt-oss*` (o200k_harmony = o200k ranks plus specials).
//! - `cl100k_base`, exact: `gpt-4`, `gpt-4-*` (turbo, 32k, dated), `gpt-3.5-turbo*` / `gpt-35-turbo*`,
//!   `text-embedding-3-*`, `text-embedding-ada-002`, `davinci-002`, `babbage-002`.
//! - Everything else (Claude, Gemini, Grok, unknown): **approximated** from the o200k_base count and flagged
//!   inexact. Anthropic, Google and xAI publish no local tokenizer, only counting endpoints. Factors
//!   (integer ratios, rounded up; chosen to err towards over-estimating a budget):
//!   - Claude: o200k × 6/5. Claude's tokenizer yields roughly 10–20 % more tokens than o200k on English
//!     prose and more on code; ×1.2 sits at the top of that range.
//!   - Gemini, Grok and unknown models: o200k × 1 (their ~256k/~131k vocabularies land near o200k on
//!     mixed text; the count is still only an estimate).

mod chat;
mod cold;
mod engine;
mod rank_hash;

pub use chat::count_chat;

use crate::error::Result;

/// A token count and whether it is exact for the model (false for approximations: Claude/Gemini/unknown
/// models, images without dimensions, tool definitions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenCount {
    pub tokens: u64,
    pub exact: bool,
}

/// A BPE encoding whose ranks are compiled into the binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// GPT-4o, GPT-4.1, GPT-5, o-series, gpt-image-1.
    O200kBase,
    /// GPT-4, GPT-3.5 Turbo, text-embedding-3 / ada-002.
    Cl100kBase,
}

impl Encoding {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::O200kBase => "o200k_base",
            Self::Cl100kBase => "cl100k_base",
        }
    }
}

/// How a model's tokens are counted: an encoding, and for approximated models the factor applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelTokenizer {
    pub encoding: Encoding,
    /// True when `encoding` is the model's own tokenizer.
    pub exact: bool,
    /// The count is multiplied by `factor_num / factor_den` (rounded up); 1/1 for exact models.
    pub factor_num: u64,
    pub factor_den: u64,
}

impl ModelTokenizer {
    const fn exact(encoding: Encoding) -> Self {
        Self { encoding, exact: true, factor_num: 1, factor_den: 1 }
    }

    const fn approx(factor_num: u64, factor_den: u64) -> Self {
        Self { encoding: Encoding::O200kBase, exact: false, factor_num, factor_den }
    }

    /// Applies the approximation factor to a count in `encoding` tokens (identity for exact models).
    pub fn scale(&self, tokens: u64) -> u64 {
        if self.factor_num == self.factor_den {
            return tokens;
        }
        let scaled = u128::from(tokens) * u128::from(self.factor_num);
        let den = u128::from(self.factor_den);
        u64::try_from(scaled.div_ceil(den)).unwrap_or(u64::MAX)
    }
}

/// The model name without provider prefixes (`openai/`, `azure/`, `openrouter/openai/`, `models/`) and
/// without the `ft:` fine-tune wrapper (`ft:gpt-4o-mini-2024-07-18:org::id` → `gpt-4o-mini-2024-07-18`).
pub(crate) fn base_model(model: &str) -> &str {
    let m = model.trim();
    let m = m.rsplit('/').next().unwrap_or(m);
    match m.strip_prefix("ft:") {
        Some(rest) => rest.split(':').next().unwrap_or(rest),
        None => m,
    }
}

/// How tokens are counted for `model` (see the module docs for the table).
pub fn tokenizer_for_model(model: &str) -> ModelTokenizer {
    let m = base_model(model).to_ascii_lowercase();
    let m = m.as_str();
    let starts = |prefixes: &[&str]| prefixes.iter().any(|p| m.starts_with(p));
    // o200k first: "gpt-4o" / "gpt-4.1" also start with "gpt-4".
    if starts(&["gpt-4o", "chatgpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4", "gpt-image-1", "gpt-oss"]) {
        ModelTokenizer::exact(Encoding::O200kBase)
    } else if m == "gpt-4"
        || starts(&["gpt-4-", "gpt-3.5-turbo", "gpt-35-turbo", "text-embedding-3-", "text-embedding-ada-002"])
        || m == "davinci-002"
        || m == "babbage-002"
    {
        ModelTokenizer::exact(Encoding::Cl100kBase)
    } else if m.contains("claude") {
        ModelTokenizer::approx(6, 5)
    } else {
        // Gemini, Grok, unknown.
        ModelTokenizer::approx(1, 1)
    }
}

/// The encoding used to count `model`'s tokens (o200k_base for approximated models).
pub fn encoding_for_model(model: &str) -> Encoding {
    tokenizer_for_model(model).encoding
}

/// Counts the tokens of `text` in `encoding` (ordinary text: `<|endoftext|>` is not a special token).
pub fn count_text_with(encoding: Encoding, text: &str) -> u64 {
    engine::count(encoding, text) as u64
}

/// Builds `encoding`'s fast engine now (blocking). Counting works without it: until the fast engine is
/// built, counts of small texts use the cold-start engine (identical counts, built from tables compiled
/// into the binary) and start building the fast one in the background.
pub fn warm_up(encoding: Encoding) {
    engine::fast(encoding);
}

/// Builds the o200k_base fast engine (~0.1–0.2 s of CPU) once per process on a background thread, so that
/// counting is at full speed by the time prompts arrive. Trackers call this.
pub fn warm_up_in_background() {
    engine::build_in_background(Encoding::O200kBase);
}

/// Counts the tokens of `text` as `model` would (no special tokens); approximations are `exact: false`.
pub fn count_text(model: &str, text: &str) -> Result<TokenCount> {
    let tk = tokenizer_for_model(model);
    Ok(TokenCount { tokens: tk.scale(count_text_with(tk.encoding, text)), exact: tk.exact })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// English, code, JSON, CJK, emoji, whitespace runs and special-token-like text.
    pub(crate) const MIXED: &str = concat!(
        "The quick brown fox jumps over the lazy dog. It's 2024; we've shipped v1.2.3!\n\n",
        "fn main() {\n    let x: Vec<u32> = (0..10).map(|i| i * 2).collect();\n    println!(\"{x:?}\");\n}\n",
        "{\"model\":\"gpt-4o\",\"usage\":{\"prompt_tokens\":1200,\"completion_tokens\":350,\"cached\":[1,2,3]}}\n",
        "한국어 문장입니다. 日本語の文章です。这是中文句子。\n",
        "Emoji: 👍🏽 👨‍👩‍👧‍👦 🇰🇷 ✨🚀\n",
        "tabs\t\t\tand   spaces      and\n\n\n\nnewlines   \n  \r\n",
        "<|endoftext|> is ordinary text here, as are <|im_start|> and <|endofprompt|>.\n",
        "I'M DONE, you'RE not. CamelCaseWords and HTTPServer2 1234567890 3.14159\n",
        "path.\n/usr/bin and a./b\n  \n\t\n     x\u{a0}\u{3000}y\r\n\r\n",
        "naïve café résumé e\u{301} Ω≈ç√ Ελληνικά русский العربية हिन्दी\n",
        "\n\n\n\n                                        end",
    );

    #[test]
    fn model_table() {
        use Encoding::*;
        for m in [
            "gpt-4o",
            "gpt-4o-2024-08-06",
            "openai/gpt-4o-mini",
            "azure/gpt-4.1-nano",
            "gpt-5",
            "gpt-5-mini-2025-08-07",
            "o1-preview",
            "o3-mini",
            "o4-mini",
            "gpt-image-1",
            "gpt-4o-mini-transcribe",
            "chatgpt-4o-latest",
            "ft:gpt-4o-mini-2024-07-18:acme::abc123",
        ] {
            assert_eq!(tokenizer_for_model(m), ModelTokenizer::exact(O200kBase), "{m}");
        }
        for m in [
            "gpt-4",
            "gpt-4-0613",
            "gpt-4-turbo",
            "gpt-4-turbo-2024-04-09",
            "gpt-3.5-turbo",
            "gpt-3.5-turbo-0301",
            "azure/gpt-35-turbo",
            "text-embedding-3-small",
            "text-embedding-ada-002",
        ] {
            assert_eq!(tokenizer_for_model(m), ModelTokenizer::exact(Cl100kBase), "{m}");
        }
        for m in ["claude-sonnet-4-5", "anthropic/claude-3-5-haiku-20241022", "us.anthropic.claude-opus-4-1-v1:0"] {
            assert_eq!(tokenizer_for_model(m), ModelTokenizer::approx(6, 5), "{m}");
        }
        for m in ["gemini-2.5-pro", "models/gemini-2.0-flash", "grok-4", "llama-3-70b", ""] {
            assert_eq!(tokenizer_for_model(m), ModelTokenizer::approx(1, 1), "{m}");
        }
        assert_eq!(encoding_for_model("gpt-4-32k"), Cl100kBase);
        assert_eq!(encoding_for_model("gpt-4.1"), O200kBase);
    }

    #[test]
    fn known_counts() {
        // Reference values from tiktoken.
        assert_eq!(count_text_with(Encoding::O200kBase, "hello world"), 2);
        assert_eq!(count_text_with(Encoding::Cl100kBase, "hello world"), 2);
        assert_eq!(count_text_with(Encoding::O200kBase, ""), 0);
        // `<|endoftext|>` as ordinary text is several tokens, never the single special token.
        assert!(count_text_with(Encoding::O200kBase, "<|endoftext|>") > 1);
        assert!(count_text_with(Encoding::Cl100kBase, "<|endoftext|>") > 1);
    }

    #[test]
    fn mixed_text_matches_tiktoken_rs() {
        let o200k = tiktoken_rs::o200k_base_singleton();
        let cl100k = tiktoken_rs::cl100k_base_singleton();
        let pieces = MIXED.split("\n\n").chain(MIXED.lines()).chain(std::iter::once(MIXED));
        for piece in pieces {
            assert_eq!(
                count_text_with(Encoding::O200kBase, piece),
                o200k.encode_ordinary(piece).len() as u64,
                "{piece:?}"
            );
            assert_eq!(
                count_text_with(Encoding::Cl100kBase, piece),
                cl100k.encode_ordinary(piece).len() as u64,
                "{piece:?}"
            );
        }
    }

    #[test]
    fn count_text_applies_model_rules() {
        let o200k = count_text_with(Encoding::O200kBase, MIXED);
        assert_eq!(count_text("gpt-4o", MIXED).ok(), Some(TokenCount { tokens: o200k, exact: true }));
        let cl = count_text_with(Encoding::Cl100kBase, MIXED);
        assert_eq!(count_text("gpt-4", MIXED).ok(), Some(TokenCount { tokens: cl, exact: true }));
        let claude = count_text("claude-sonnet-4-5", MIXED).ok();
        assert_eq!(claude, Some(TokenCount { tokens: (o200k * 6).div_ceil(5), exact: false }));
        assert_eq!(count_text("gemini-2.5-pro", MIXED).ok(), Some(TokenCount { tokens: o200k, exact: false }));
    }

    #[test]
    fn scale_rounds_up_and_saturates() {
        let claude = ModelTokenizer::approx(6, 5);
        assert_eq!(claude.scale(0), 0);
        assert_eq!(claude.scale(1), 2);
        assert_eq!(claude.scale(10), 12);
        assert_eq!(claude.scale(u64::MAX), u64::MAX);
    }
}
