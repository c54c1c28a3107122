//! Prompt-token counting of a chat request (`messages` and `tools` as the OpenAI API takes them).
//!
//! ## Rules (OpenAI cookbook "How to count tokens with tiktoken")
//! - Each message costs 3 tokens, plus the tokens of every string value in it (`role`, `content`, `name`,
//!   `tool_call_id`, …); a `name` adds 1 more. The reply is primed with 3 tokens. `gpt-3.5-turbo-0301`
//!   uses the older rule: 4 per message, −1 per name.
//! - `content` is a string, `null`, or a list of parts: `text` parts count their text; `image_url` parts
//!   count by the tile formula below; other parts (audio, files) are not counted locally and make the
//!   count inexact.
//! - Assistant `tool_calls` (and the legacy `function_call`) count the function name and the arguments.
//! - Tool definitions (`tools`, Chat Completions `{type, function: {...}}` or Responses-style flat
//!   `{type, name, ...}`) are rendered into the TypeScript-like namespace OpenAI feeds the model, as the
//!   openai community reverse-engineered it, and that text is counted:
//!   ```text
//!   namespace functions {
//!
//!   // {description}
//!   type {name} = (_: {
//!   // {property description}
//!   {property}{? if optional}: {type},
//!   }) => any;
//!
//!   } // namespace functions
//!   ```
//!   Types: `string` (enums as `"a" | "b"`), `number`, `boolean`, `T[]`, `object`. This is an
//!   approximation (a few tokens off), so any count with tools is `exact: false`.
//!
//! ## Images (OpenAI "Images and vision", tile formula)
//! `detail: "low"` = base tokens. `high`/`auto` (the default): scale to fit 2048×2048, then down so the
//! shortest side is 768 px, count 512 px tiles: base + tile × tiles. Base/tile: 85/170 (GPT-4o, 4.1,
//! 4.5 and unlisted models), 2833/5667 (gpt-4o-mini), 70/140 (gpt-5, gpt-5-chat), 75/150 (o1, o3).
//! Models billed by 32 px patches (gpt-4.1-mini/nano, gpt-5-mini/nano, o4-mini) are approximated with
//! 85/170 and flagged inexact. The API does not carry the image size, so `width`/`height` are read from
//! the part (`image_url.width`/`height` or the part's own `width`/`height`, an llmledger extension);
//! without them 1024×1024 is assumed (765 tokens at 85/170) and the count is inexact.
//!
//! Approximated models (Claude, Gemini, …) get the same structure counted in o200k and then scaled.

use serde_json::{Map, Value};

use super::{base_model, count_text_with, tokenizer_for_model, Encoding, TokenCount};
use crate::error::{Error, Result};

/// The image size assumed when the request does not say (documented in the module docs).
const DEFAULT_IMAGE_SIDE: u64 = 1024;

/// Counts the prompt tokens of a chat request for `model`. `messages` must be an array of message
/// objects; `tools`, when given, an array of tool definitions.
pub fn count_chat(model: &str, messages: &Value, tools: Option<&Value>) -> Result<TokenCount> {
    let tk = tokenizer_for_model(model);
    let base = base_model(model).to_ascii_lowercase();
    let mut c = Counter { enc: tk.encoding, image: image_rule(&base), tokens: 0, exact: tk.exact };
    let (per_message, per_name): (u64, i64) = if base == "gpt-3.5-turbo-0301" { (4, -1) } else { (3, 1) };

    let list = messages
        .as_array()
        .ok_or_else(|| Error::invalid_value("messages", kind(messages), "must be an array of messages"))?;
    for (i, msg) in list.iter().enumerate() {
        let obj = msg
            .as_object()
            .ok_or_else(|| Error::invalid_value(format!("messages[{i}]"), kind(msg), "must be an object"))?;
        if !obj.get("role").is_some_and(Value::is_string) {
            return Err(match obj.get("role") {
                None => Error::missing_field(format!("messages[{i}].role")),
                Some(v) => Error::invalid_value(format!("messages[{i}].role"), kind(v), "must be a string"),
            });
        }
        c.tokens += per_message;
        c.message(i, obj, per_name)?;
    }
    c.tokens += 3; // every reply is primed with <|start|>assistant<|message|>
    if let Some(tools) = tools {
        c.tools(tools)?;
    }
    Ok(TokenCount { tokens: tk.scale(c.tokens), exact: c.exact })
}

struct Counter {
    enc: Encoding,
    image: ImageRule,
    tokens: u64,
    exact: bool,
}

impl Counter {
    fn text(&mut self, s: &str) {
        self.tokens += count_text_with(self.enc, s);
    }

    fn message(&mut self, i: usize, obj: &Map<String, Value>, per_name: i64) -> Result<()> {
        for (key, value) in obj {
            match (key.as_str(), value) {
                ("content", Value::String(s)) => self.text(s),
                ("content", Value::Null) => {}
                ("content", Value::Array(parts)) => self.parts(i, parts)?,
                ("content", other) => {
                    return Err(Error::invalid_value(
                        format!("messages[{i}].content"),
                        kind(other),
                        "must be a string, an array of parts or null",
                    ))
                }
                ("tool_calls", Value::Array(calls)) => {
                    for (j, call) in calls.iter().enumerate() {
                        let f = call
                            .get("function")
                            .ok_or_else(|| Error::missing_field(format!("messages[{i}].tool_calls[{j}].function")))?;
                        self.function_call(f);
                    }
                }
                ("function_call", f @ Value::Object(_)) => self.function_call(f),
                ("name", Value::String(s)) => {
                    self.text(s);
                    self.tokens = self.tokens.saturating_add_signed(per_name);
                }
                // role, tool_call_id and any other string value are part of what the model reads.
                (_, Value::String(s)) => self.text(s),
                // Unknown non-string fields (audio references, refusal: null, …) are ignored.
                _ => {}
            }
        }
        Ok(())
    }

    fn function_call(&mut self, f: &Value) {
        for key in ["name", "arguments"] {
            if let Some(s) = f.get(key).and_then(Value::as_str) {
                self.text(s);
            }
        }
    }

    fn parts(&mut self, i: usize, parts: &[Value]) -> Result<()> {
        for (j, part) in parts.iter().enumerate() {
            let field = || format!("messages[{i}].content[{j}]");
            if let Value::String(s) = part {
                self.text(s);
                continue;
            }
            let ty = part.get("type").and_then(Value::as_str).ok_or_else(|| Error::missing_field(field() + ".type"))?;
            match ty {
                "text" | "input_text" | "output_text" => {
                    let s = part
                        .get("text")
                        .and_then(Value::as_str)
                        .ok_or_else(|| Error::missing_field(field() + ".text"))?;
                    self.text(s);
                }
                "image_url" | "input_image" => self.image(part, &field)?,
                // Audio and files are billed by the provider's own measure; not counted locally.
                _ => self.exact = false,
            }
        }
        Ok(())
    }

    fn image(&mut self, part: &Value, field: &dyn Fn() -> String) -> Result<()> {
        // Chat Completions nests `{url, detail}` under `image_url`; Responses puts them on the part.
        let inner = part.get("image_url").filter(|v| v.is_object()).unwrap_or(part);
        let detail = inner.get("detail").or_else(|| part.get("detail")).and_then(Value::as_str).unwrap_or("auto");
        let dim = |key: &str| -> Result<Option<u64>> {
            match inner.get(key).or_else(|| part.get(key)) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => match v.as_u64() {
                    Some(n) if n > 0 && n <= 1_000_000 => Ok(Some(n)),
                    _ => {
                        Err(Error::invalid_value(format!("{}.{key}", field()), v, "must be a pixel count 1..=1000000"))
                    }
                },
            }
        };
        let (w, h) = match (dim("width")?, dim("height")?) {
            (Some(w), Some(h)) => (w, h),
            _ => {
                self.exact = false;
                (DEFAULT_IMAGE_SIDE, DEFAULT_IMAGE_SIDE)
            }
        };
        if !self.image.exact {
            self.exact = false;
        }
        self.tokens += match detail {
            "low" => self.image.base,
            "high" | "auto" => self.image.base + self.image.tile * tiles(w, h),
            other => return Err(Error::invalid_value(field() + ".detail", other, "must be low, high or auto")),
        };
        Ok(())
    }

    fn tools(&mut self, tools: &Value) -> Result<()> {
        let list =
            tools.as_array().ok_or_else(|| Error::invalid_value("tools", kind(tools), "must be an array of tools"))?;
        if list.is_empty() {
            return Ok(());
        }
        self.exact = false;
        let mut out = String::from("namespace functions {\n\n");
        for (i, tool) in list.iter().enumerate() {
            // Chat Completions: {type, function: {...}}; Responses and legacy `functions`: flat.
            let f = tool.get("function").filter(|v| v.is_object()).unwrap_or(tool);
            let name = f
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| Error::missing_field(format!("tools[{i}].name")))?;
            if let Some(d) = f.get("description").and_then(Value::as_str) {
                out.push_str("// ");
                out.push_str(d);
                out.push('\n');
            }
            out.push_str("type ");
            out.push_str(name);
            match f.get("parameters").and_then(|p| p.get("properties")).and_then(Value::as_object) {
                Some(props) if !props.is_empty() => {
                    out.push_str(" = (_: {\n");
                    let required = f.get("parameters").and_then(|p| p.get("required")).and_then(Value::as_array);
                    for (prop, schema) in props {
                        if let Some(d) = schema.get("description").and_then(Value::as_str) {
                            out.push_str("// ");
                            out.push_str(d);
                            out.push('\n');
                        }
                        out.push_str(prop);
                        if !required.is_some_and(|r| r.iter().any(|v| v.as_str() == Some(prop))) {
                            out.push('?');
                        }
                        out.push_str(": ");
                        ts_type(schema, &mut out);
                        out.push_str(",\n");
                    }
                    out.push_str("}) => any;\n\n");
                }
                _ => out.push_str(" = () => any;\n\n"),
            }
        }
        out.push_str("} // namespace functions");
        self.text(&out);
        Ok(())
    }
}

/// The TypeScript-like type of a JSON-schema property.
fn ts_type(schema: &Value, out: &mut String) {
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        for (k, v) in values.iter().enumerate() {
            if k > 0 {
                out.push_str(" | ");
            }
            out.push_str(&v.to_string());
        }
        return;
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("string") => out.push_str("string"),
        Some("number" | "integer") => out.push_str("number"),
        Some("boolean") => out.push_str("boolean"),
        Some("array") => {
            match schema.get("items") {
                Some(items) => ts_type(items, out),
                None => out.push_str("any"),
            }
            out.push_str("[]");
        }
        Some("object") => out.push_str("object"),
        _ => out.push_str("any"),
    }
}

/// Base and per-tile tokens of the model family, and whether the tile formula is the model's own.
#[derive(Debug, Clone, Copy)]
struct ImageRule {
    base: u64,
    tile: u64,
    exact: bool,
}

fn image_rule(model: &str) -> ImageRule {
    let starts = |p: &str| model.starts_with(p);
    let (base, tile, exact) = if starts("gpt-4.1-mini")
        || starts("gpt-4.1-nano")
        || starts("gpt-5-mini")
        || starts("gpt-5-nano")
        || starts("o4-mini")
    {
        (85, 170, false) // billed by 32 px patches; approximated
    } else if starts("gpt-4o-mini") {
        (2833, 5667, true)
    } else if starts("gpt-5") {
        (70, 140, true)
    } else if starts("o1") || starts("o3") {
        (75, 150, true)
    } else {
        (85, 170, true)
    };
    ImageRule { base, tile, exact }
}

/// 512 px tiles of a `w`×`h` image after fitting in 2048×2048 and scaling the shortest side down to 768.
fn tiles(w: u64, h: u64) -> u64 {
    let (mut w, mut h) = (w, h);
    let longest = w.max(h);
    if longest > 2048 {
        w = (w * 2048).div_ceil(longest);
        h = (h * 2048).div_ceil(longest);
    }
    let shortest = w.min(h);
    if shortest > 768 {
        w = (w * 768).div_ceil(shortest);
        h = (h * 768).div_ceil(shortest);
    }
    w.div_ceil(512) * h.div_ceil(512)
}

/// The JSON type of `v`, for error messages (never the value itself: it may be prompt text).
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::error::ErrorCode;
    use crate::tokens::tests::MIXED;

    fn o(s: &str) -> u64 {
        count_text_with(Encoding::O200kBase, s)
    }

    #[test]
    fn cookbook_rule() {
        let msgs = json!([
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "name": "alice", "content": MIXED},
        ]);
        let expected =
            3 + o("system") + o("You are a helpful assistant.") + 3 + o("user") + o("alice") + 1 + o(MIXED) + 3;
        assert_eq!(count_chat("gpt-4o", &msgs, None).ok(), Some(TokenCount { tokens: expected, exact: true }));
        // The 0301 rule: 4 per message, -1 per name, in cl100k.
        let cl = |s: &str| count_text_with(Encoding::Cl100kBase, s);
        let old =
            4 + cl("system") + cl("You are a helpful assistant.") + 4 + cl("user") + cl("alice") - 1 + cl(MIXED) + 3;
        assert_eq!(count_chat("gpt-3.5-turbo-0301", &msgs, None).map(|c| c.tokens).ok(), Some(old));
    }

    #[test]
    fn peers_chat_gives_6837() {
        // The peers' 20-message chat (`gen_corpus.py`, sha256 415f676c…); every peer counts 6,837.
        let chat: Value = serde_json::from_str(include_str!("../../tests/data/chat20.json")).unwrap_or_default();
        assert_eq!(count_chat("gpt-4o", &chat, None).ok(), Some(TokenCount { tokens: 6837, exact: true }));
    }

    #[test]
    fn parts_tool_calls_and_nulls() {
        let msgs = json!([
            {"role": "user", "content": [{"type": "text", "text": "What is in"}, {"type": "text", "text": " this?"}]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\":\"fox\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "a fox"},
        ]);
        let expected = 3
            + o("user")
            + o("What is in")
            + o(" this?")
            + 3
            + o("assistant")
            + o("lookup")
            + o("{\"q\":\"fox\"}")
            + 3
            + o("tool")
            + o("call_1")
            + o("a fox")
            + 3;
        assert_eq!(count_chat("gpt-4o", &msgs, None).ok(), Some(TokenCount { tokens: expected, exact: true }));
    }

    #[test]
    fn image_tiles() {
        assert_eq!(tiles(1024, 1024), 4); // -> 768x768
        assert_eq!(tiles(2048, 4096), 6); // -> 1024x2048 -> 768x1536
        assert_eq!(tiles(512, 512), 1);
        assert_eq!(tiles(100, 5000), 4); // -> 41x2048, no upscaling
        let img = |extra: Value| {
            let mut part = json!({"type": "image_url", "image_url": {"url": "https://x/y.png"}});
            if let (Some(p), Value::Object(e)) = (part["image_url"].as_object_mut(), extra) {
                p.extend(e);
            }
            json!([{"role": "user", "content": [part]}])
        };
        let overhead = 3 + o("user") + 3;
        let low = count_chat("gpt-4o", &img(json!({"detail": "low", "width": 4000, "height": 3000})), None).ok();
        assert_eq!(low, Some(TokenCount { tokens: overhead + 85, exact: true }));
        let high = count_chat("gpt-4o", &img(json!({"detail": "high", "width": 2048, "height": 4096})), None).ok();
        assert_eq!(high, Some(TokenCount { tokens: overhead + 85 + 170 * 6, exact: true }));
        // No size: 1024x1024 assumed, inexact.
        let unknown = count_chat("gpt-4o", &img(json!({})), None).ok();
        assert_eq!(unknown, Some(TokenCount { tokens: overhead + 765, exact: false }));
        let mini = count_chat("gpt-4o-mini", &img(json!({"detail": "low", "width": 10, "height": 10})), None).ok();
        assert_eq!(mini, Some(TokenCount { tokens: overhead + 2833, exact: true }));
        let e = count_chat("gpt-4o", &img(json!({"detail": "ultra", "width": 10, "height": 10})), None).err();
        assert_eq!(
            e.map(|e| (e.code(), e.field().map(String::from))),
            Some((ErrorCode::InvalidValue, Some("messages[0].content[0].detail".into())))
        );
        let e = count_chat("gpt-4o", &img(json!({"width": -3, "height": 10})), None).err();
        assert_eq!(e.map(|e| e.code()), Some(ErrorCode::InvalidValue));
    }

    #[test]
    fn tools_rendered_and_inexact() {
        let msgs = json!([{"role": "user", "content": "hi"}]);
        let tools = json!([{"type": "function", "function": {
            "name": "get_weather", "description": "Get the weather",
            "parameters": {"type": "object", "required": ["city"], "properties": {
                // Alphabetical, so the rendering is the same with or without serde_json's preserve_order.
                "city": {"type": "string", "description": "City name"},
                "days": {"type": "array", "items": {"type": "integer"}},
                "unit": {"type": "string", "enum": ["c", "f"]}
            }}
        }}]);
        let rendered =
            "namespace functions {\n\n// Get the weather\ntype get_weather = (_: {\n// City name\ncity: string,\n\
                        days?: number[],\nunit?: \"c\" | \"f\",\n}) => any;\n\n} // namespace functions";
        let plain = 3 + o("user") + o("hi") + 3;
        let got = count_chat("gpt-4o", &msgs, Some(&tools)).ok();
        assert_eq!(got, Some(TokenCount { tokens: plain + o(rendered), exact: false }));
        // Responses-style flat definitions render the same.
        let flat = json!([{"type": "function", "name": "get_weather", "description": "Get the weather",
            "parameters": tools[0]["function"]["parameters"].clone()}]);
        assert_eq!(count_chat("gpt-4o", &msgs, Some(&flat)).ok(), got);
        assert_eq!(count_chat("gpt-4o", &msgs, Some(&json!([]))).ok(), Some(TokenCount { tokens: plain, exact: true }));
    }

    #[test]
    fn approximated_models_scale_the_whole_count() {
        let msgs = json!([{"role": "user", "content": MIXED}]);
        let plain = 3 + o("user") + o(MIXED) + 3;
        let got = count_chat("claude-sonnet-4-5", &msgs, None).ok();
        assert_eq!(got, Some(TokenCount { tokens: (plain * 6).div_ceil(5), exact: false }));
    }

    #[test]
    fn errors_name_the_field() {
        let field = |msgs: Value, tools: Option<Value>| {
            count_chat("gpt-4o", &msgs, tools.as_ref()).err().map(|e| (e.code(), e.field().map(String::from)))
        };
        let inv = |f: &str| Some((ErrorCode::InvalidValue, Some(f.to_string())));
        let miss = |f: &str| Some((ErrorCode::MissingField, Some(f.to_string())));
        assert_eq!(field(json!({"role": "user"}), None), inv("messages"));
        assert_eq!(field(json!(["hi"]), None), inv("messages[0]"));
        assert_eq!(field(json!([{"content": "hi"}]), None), miss("messages[0].role"));
        assert_eq!(field(json!([{"role": 1, "content": "hi"}]), None), inv("messages[0].role"));
        let bad = json!([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}, {"role": "user", "content": "c"},
                         {"role": "user", "content": 42}]);
        assert_eq!(field(bad, None), inv("messages[3].content"));
        assert_eq!(
            field(json!([{"role": "user", "content": [{"text": "x"}]}]), None),
            miss("messages[0].content[0].type")
        );
        assert_eq!(
            field(json!([{"role": "user", "content": [{"type": "text"}]}]), None),
            miss("messages[0].content[0].text")
        );
        assert_eq!(
            field(json!([{"role": "assistant", "tool_calls": [{"id": "x"}]}]), None),
            miss("messages[0].tool_calls[0].function")
        );
        assert_eq!(field(json!([]), Some(json!({"name": "f"}))), inv("tools"));
        assert_eq!(field(json!([]), Some(json!([{"type": "function", "function": {}}]))), miss("tools[0].name"));
    }

    #[test]
    fn unknown_parts_are_inexact() {
        let msgs = json!([{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "..", "format": "wav"}}]}]);
        assert_eq!(
            count_chat("gpt-4o", &msgs, None).ok(),
            Some(TokenCount { tokens: 3 + o("user") + 3, exact: false })
        );
    }
}
