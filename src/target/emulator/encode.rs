//! QEMU's output form, byte for byte where it is cheap to match.
//!
//! QEMU 7.2 serialises a `QDict` in the order of its hash table (`qobject/qdict.c`:
//! `tdb_hash(key) % 512` buckets, newest first within a bucket), which is why it sends
//! `{"return": {}, "id": 1}` but `{"id": 1, "error": ...}` and `{"timestamp": ..., "event": ...}`.
//! Strings are ASCII with uppercase `\uXXXX` escapes (`/` is not escaped), doubles are printed
//! with `%.17g`, separators are `", "` and `": "`, and every message ends with CRLF.

use std::fmt::Write as _;

use serde_json::{Map, Number, Value};

/// Number of hash buckets of QEMU's `QDict`.
const QDICT_BUCKETS: u32 = 512;

/// One message in QEMU's wire form, CRLF included.
pub fn encode(value: &Value) -> Vec<u8> {
    let mut out = String::with_capacity(128);
    write_value(&mut out, value);
    out.push_str("\r\n");
    out.into_bytes()
}

/// The members of `object` in the order QEMU iterates a `QDict` built by inserting them in
/// `object`'s order (the dispatcher checks members in this order too).
pub fn qdict_order(object: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<(usize, u32, (&String, &Value))> =
        object.iter().enumerate().map(|(i, (k, v))| (i, qdict_bucket(k), (k, v))).collect();
    // Buckets ascending; within a bucket the most recently inserted first.
    entries.sort_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)));
    entries.into_iter().map(|(_, _, kv)| kv).collect()
}

/// QEMU's `tdb_hash` of a key, reduced to its bucket.
fn qdict_bucket(key: &str) -> u32 {
    let bytes = key.as_bytes();
    let mut value = 0x238F_13AFu32.wrapping_mul(bytes.len() as u32);
    for (i, &c) in bytes.iter().enumerate() {
        value = value.wrapping_add(u32::from(c) << ((i * 5) % 24));
    }
    1_103_515_243u32.wrapping_mul(value).wrapping_add(12345) % QDICT_BUCKETS
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(object) => {
            out.push('{');
            for (i, (key, item)) in qdict_order(object).into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_string(out, key);
                out.push_str(": ");
                write_value(out, item);
            }
            out.push('}');
        }
    }
}

fn write_number(out: &mut String, n: &Number) {
    if let Some(i) = n.as_i64() {
        let _ = write!(out, "{i}");
    } else if let Some(u) = n.as_u64() {
        let _ = write!(out, "{u}");
    } else if let Some(f) = n.as_f64() {
        out.push_str(&format_g17(f));
    }
}

/// C's `printf("%.17g", x)` for a finite double.
pub fn format_g17(x: f64) -> String {
    if x == 0.0 {
        return if x.is_sign_negative() { "-0".to_string() } else { "0".to_string() };
    }
    let scientific = format!("{x:.16e}");
    let Some((mantissa, exponent)) = scientific.split_once('e') else { return scientific };
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if !(-4..17).contains(&exponent) {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", strip_fraction_zeros(mantissa), exponent.unsigned_abs())
    } else {
        let decimals = usize::try_from(16 - exponent).unwrap_or(0);
        strip_fraction_zeros(&format!("{x:.decimals$}")).to_string()
    }
}

/// `%g` drops trailing zeros of the fraction, and the point when nothing is left.
fn strip_fraction_zeros(text: &str) -> &str {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    }
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    let mut rest = s;
    while !rest.is_empty() {
        // Printable ASCII other than quote and backslash goes out as it is, a run at a time.
        let plain = rest.bytes().position(|b| !matches!(b, b' '..=b'~') || b == b'"' || b == b'\\');
        let (run, tail) = rest.split_at(plain.unwrap_or(rest.len()));
        out.push_str(run);
        let mut chars = tail.chars();
        let Some(c) = chars.next() else { break };
        rest = chars.as_str();
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04X}");
                }
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_matches_qemu_7_2_output() {
        // Orders observed on QEMU 7.2's wire; input in QAPI declaration (insertion) order.
        let reply =
            json!({"return": {"running": false, "singlestep": false, "status": "prelaunch"}, "id": 1});
        let text = String::from_utf8(encode(&reply)).unwrap_or_default();
        assert_eq!(text, "{\"return\": {\"status\": \"prelaunch\", \"singlestep\": false, \"running\": false}, \"id\": 1}\r\n");
        let error = json!({"error": {"class": "GenericError", "desc": "x"}, "id": [1, 2]});
        let text = String::from_utf8(encode(&error)).unwrap_or_default();
        assert_eq!(text, "{\"id\": [1, 2], \"error\": {\"class\": \"GenericError\", \"desc\": \"x\"}}\r\n");
        let version = json!({"major": 7, "minor": 2, "micro": 22});
        assert_eq!(encode(&version), b"{\"micro\": 22, \"minor\": 2, \"major\": 7}\r\n".to_vec());
    }

    #[test]
    fn doubles_print_like_percent_17g() {
        // Pairs observed on QEMU 7.2 echoing ids.
        let cases = [
            (0.1, "0.10000000000000001"),
            (1e-7, "9.9999999999999995e-08"),
            (1e17, "1e+17"),
            (1e16, "10000000000000000"),
            (123.456, "123.456"),
            (-2.5e-5, "-2.5000000000000001e-05"),
            (1e300, "1.0000000000000001e+300"),
            (5e-324, "4.9406564584124654e-324"),
            (-0.0, "-0"),
            (100.0, "100"),
            (1.2345678901234568e29, "1.2345678901234568e+29"),
        ];
        for (x, want) in cases {
            assert_eq!(format_g17(x), want, "{x}");
        }
    }

    #[test]
    fn strings_are_ascii_with_uppercase_escapes() {
        let text = encode(&json!("\u{e9}\u{1F600}/\u{7f}\u{1}"));
        assert_eq!(text, b"\"\\u00E9\\uD83D\\uDE00/\\u007F\\u0001\"\r\n".to_vec());
        let text = encode(&json!("ab\"c\\d\te\nf\r\u{8}\u{c}gh"));
        assert_eq!(text, b"\"ab\\\"c\\\\d\\te\\nf\\r\\b\\fgh\"\r\n".to_vec());
    }
}
